"""BTSP's EIANN options (issue 18): the ReLU gate (silent units get no plateau, output units included) and the cap
on negative plateaus, by hand; and the 'only units with a plateau change' invariant with both on."""
from __future__ import annotations

import torch

from spikes.learning.btsp import BTSP, select_plateaus
from spikes.learning.rule import Batch
from spikes.models.ei_network import EINetwork, RateTargetObjective


def test_relu_gate_and_negative_cap_by_hand():
    d = torch.tensor([[0.9, 0.2, 0.5, -0.4, -0.1, 0.0, 0.7, -0.6, -0.8, 0.3]])
    rate = torch.tensor([[1.0, 1.0, 0.0, 0.5, 0.2, 1.0, 1.0, 0.3, 0.0, 1.0]])
    # gate: units 2 and 8 are silent; positive: the 3 largest of the rest (0.9, 0.7, 0.3); negative: every D < 0
    # unit with rate > 0 (3, 4, 7)
    p = select_plateaus(d, rate, max_pop_fraction=0.3, neg_rate_th=0.0, relu_gate=True)
    assert torch.equal(p, torch.tensor([[0.9, 0.0, 0.0, -0.4, -0.1, 0.0, 0.7, -0.6, 0.0, 0.3]]))
    # cap: at most 3 negative too; here 3 remain, so nothing changes; with a cap of 2: the two most negative
    p = select_plateaus(d, rate, max_pop_fraction=0.2, neg_rate_th=0.0, relu_gate=True, cap_negative=True)
    assert torch.equal(p, torch.tensor([[0.9, 0.0, 0.0, -0.4, 0.0, 0.0, 0.7, -0.6, 0.0, 0.0]]))
    # without the gate the silent unit 2 (D = 0.5) takes a positive plateau (the silent unit 8 is no negative
    # candidate anyway: its rate is not above neg_rate_th)
    p = select_plateaus(d, rate, max_pop_fraction=0.3, neg_rate_th=0.0)
    assert torch.equal(p, torch.tensor([[0.9, 0.0, 0.5, -0.4, -0.1, 0.0, 0.7, -0.6, 0.0, 0.0]]))


def test_gated_rule_changes_only_active_units_with_a_plateau():
    net = EINetwork(6, 3, hidden=(12, 8), seed=1, input_gain=3.0, connectivity=0.5)
    rule = BTSP(BTSP.Options(lr=0.1, lr_output=0.1, temporal_discount=0.0, max_pop_fraction=0.25, relu_gate=True,
                             cap_negative=True, lr_inhibitory=0.0))
    rule.setup(net, None, 0)
    g = torch.Generator().manual_seed(0)
    seen_silent = False
    for step in range(8):
        batch = Batch(torch.rand(1, 6, generator=g), torch.randint(0, 3, (1,), generator=g))
        fwd = net.forward_phase(batch.x.to(net.layers[0].w_in.dtype))
        before = [layer.w_in.detach().clone() for layer in net.layers]
        rule.train_step(net, batch, RateTargetObjective())
        for k, layer in enumerate(net.layers):
            plateau = rule.last_plateaus[k][0] != 0
            silent = fwd[k].e[0] == 0
            seen_silent |= bool(silent.any())
            assert not bool((plateau & silent).any()), (step, k)                 # the gate
            if k < len(net.layers) - 1:
                assert int((rule.last_plateaus[k][0] < 0).sum()) <= int(0.25 * layer.n_e)   # the cap
            changed = (layer.w_in.detach() != before[k]).any(1)
            assert not bool((changed & ~plateau).any()), (step, k)
    assert seen_silent          # the gate had something to gate
