"""The e-prop layer (``spikes.layers.EpropRecurrent``) as ``RSNN``'s body, and the learner finding it in a model."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikes.layers import EpropRecurrent
from spikes.learning.eprop import EProp, EPropConfig, find_eprop_layer
from spikes.learning.eprop_losses import SequenceMSE
from spikes.models.rsnn import RSNN, RSNNConfig
from spikes.neurons import eprop_neuron_step

CFG = RSNNConfig(n_in=4, n_rec=6, n_out=2, n_adaptive=3, tau_a=40.0, n_ref=2)


class Wrapper(nn.Module):
    """A model holding one e-prop layer and a layer e-prop does not train."""

    def __init__(self, n_layers: int = 1):
        super().__init__()
        self.encoder = nn.Linear(3, 3)
        self.rnns = nn.ModuleList(EpropRecurrent(CFG, seed=1, dtype=torch.float64) for _ in range(n_layers))


def _inputs(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(30, 2, CFG.n_in, generator=g, dtype=torch.float64) < 0.4).double()


def test_rsnn_is_the_layer_and_state_dicts_load_both_ways():
    model, layer = RSNN(CFG, seed=3), EpropRecurrent(CFG, seed=3)
    assert isinstance(model, EpropRecurrent)
    assert set(model.state_dict()) == {"w_in", "w_rec", "w_out", "b_out", "betas", "no_self"}
    for k, v in model.state_dict().items():
        assert torch.equal(v, layer.state_dict()[k]), k
    other = EpropRecurrent(CFG, seed=4)
    other.load_state_dict(model.state_dict())
    RSNN(CFG, seed=5).load_state_dict(other.state_dict())
    x = _inputs().float()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x), other(x)))


def test_layer_step_is_the_neuron_step_fed_by_the_weights():
    """One layer step = eprop_neuron_step on (W_rec z[t-1], W_in x[t]) plus the readout kappa y + W_out z + b."""
    layer = EpropRecurrent(CFG, seed=2, dtype=torch.float64)
    with torch.no_grad():
        layer.w_in.mul_(3.0)
        layer.b_out.fill_(0.1)
    x = _inputs(1)
    state, neurons, y = layer.initial_state(2), None, torch.zeros(2, CFG.n_out, dtype=torch.float64)
    spiked = 0.0
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = layer.step(x[t], state)
            z_prev = neurons.z if neurons is not None else torch.zeros(2, CFG.n_rec, dtype=torch.float64)
            z, psi, neurons = eprop_neuron_step((z_prev @ layer.recurrent_weight().t(), x[t] @ layer.w_in.t()),
                                                neurons, CFG.neuron_parameters(layer.betas))
            y = CFG.kappa * y + z @ layer.w_out.t() + layer.b_out
            assert torch.equal(out.z, z) and torch.equal(out.psi, psi) and torch.equal(out.y, y)
            assert all(torch.equal(a, b) for a, b in zip(state[:4], neurons))
            spiked += float(z.sum())
    assert spiked > 0


def test_eprop_finds_the_one_layer_in_a_model():
    wrapper = Wrapper()
    assert find_eprop_layer(wrapper) is wrapper.rnns[0]
    layer = EpropRecurrent(CFG, seed=1, dtype=torch.float64)
    assert find_eprop_layer(layer) is layer
    x = _inputs(2)
    target = torch.randn(30, 2, CFG.n_out, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    encoder_before = wrapper.encoder.weight.detach().clone()
    on_wrapper = EProp(wrapper, EPropConfig(c_reg=0.1), lr=1e-2)
    on_layer = EProp(layer, EPropConfig(c_reg=0.1), lr=1e-2)
    on_wrapper.run(x, SequenceMSE(target), apply=False)
    on_layer.run(x, SequenceMSE(target), apply=False)
    for name, g in on_layer.gradients().items():
        assert g.norm() > 0 and torch.equal(on_wrapper.gradients()[name], g), name
    on_wrapper.apply()
    on_layer.apply()
    assert torch.equal(wrapper.encoder.weight, encoder_before)  # not the layer's: untouched
    for (name, p), q in zip(wrapper.rnns[0].named_parameters(), layer.parameters()):
        assert torch.equal(p, q), name


def test_eprop_refuses_a_model_without_or_with_several_layers():
    with pytest.raises(ValueError, match="model Wrapper has 0 .*pass the layer"):
        EProp(Wrapper(0))
    with pytest.raises(ValueError, match=r"model Wrapper has 2: rnns\.0, rnns\.1"):
        EProp(Wrapper(2))
    with pytest.raises(TypeError, match="got str"):
        EProp("rsnn")
