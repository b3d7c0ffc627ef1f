"""StereoSpike network: graph wiring against a hand-written forward, shapes, cumulative readout, neurons."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikes.models.stereospike import OneStepIF, OneStepPLIF, StereoSpike, StereoUNetANN


def tiny(**kw) -> StereoSpike:
    kw = {"base": 2, "levels": 2, "n_res": 1, "input_size": (13, 19), **kw}
    return StereoSpike(**kw)


def counts(shape, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full(shape, 1.5), generator=g)


def test_graph_matches_hand_written_forward_and_readout_is_cumulative():
    net = tiny()
    with torch.no_grad():  # make every layer fire sometimes
        for name, m in net.layers.items():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0.2, 0.5)
    L = net.layers
    x = counts((2, 4, 13, 19))
    h = lambda t: (t > 1.0).float()  # noqa: E731  S = H(W*S_in - 1)
    b0 = h(F.conv2d(x, L["bottom_conv"].weight, padding=2))                    # 13x19
    e1 = h(F.conv2d(b0, L["enc1_conv"].weight, stride=2, padding=2))           # 7x10
    e2 = h(F.conv2d(e1, L["enc2_conv"].weight, stride=2, padding=2))           # 4x5
    r = h(F.conv2d(h(F.conv2d(e2, L["res1_conv1"].weight, padding=1)), L["res1_conv2"].weight, padding=1)) + e2
    d2 = h(F.conv2d(F.interpolate(r, size=(11, 14), mode="nearest"), L["dec2_conv"].weight)) + e1
    p2 = F.conv2d(F.interpolate(d2, size=(15, 21), mode="nearest"), L["pred2_conv"].weight, L["pred2_conv"].bias)
    d1 = h(F.conv2d(F.interpolate(d2, size=(17, 23), mode="nearest"), L["dec1_conv"].weight)) + b0
    p1 = F.conv2d(F.interpolate(d1, size=(15, 21), mode="nearest"), L["pred1_conv"].weight, L["pred1_conv"].bias)

    out = net(x)
    assert [tuple(d.shape) for d in out.depths] == [(2, 1, 13, 19)] * 2
    torch.testing.assert_close(out.depths[0], p2)           # depth2 = P2
    torch.testing.assert_close(out.depths[1], p2 + p1)      # depth1 = P2 + P1
    torch.testing.assert_close(out.penalised["res1"], r)
    torch.testing.assert_close(out.penalised["skip2"], d2)
    torch.testing.assert_close(out.penalised["skip1"], d1)
    assert out.activations["bottom_sn"].unique().tolist() in ([0.0, 1.0], [0.0], [1.0])
    assert set(out.penalised["skip1"].unique().tolist()) <= {0.0, 1.0, 2.0}
    assert 0 < float(b0.mean()) < 1 and 0 < float(d1.mean())
    assert list(out.penalised) == ["res1", "skip2", "skip1"]


def test_graph_is_deployable_and_documented():
    net = StereoSpike(base=2, levels=3, n_res=2, input_size=(24, 32))
    ops = {n.op for n in net.graph()}
    assert ops == {"conv", "neuron", "upsample", "add"}
    for m in net.modules():
        assert not isinstance(m, (nn.BatchNorm2d, nn.ConvTranspose2d))
    for name, m in net.layers.items():
        if isinstance(m, nn.Conv2d):
            assert (m.bias is not None) == name.startswith("pred"), name
        if isinstance(m, nn.Upsample):
            assert m.mode == "nearest"
    names = [n.name for n in net.graph()]
    assert len(names) == len(set(names))
    defined = {"input"}
    for node in net.graph():  # every input is produced before it is used
        assert set(node.inputs) <= defined, node
        defined.add(node.name)
    assert net.depth_names == ["depth3", "depth2", "depth1"]
    out = net(counts((1, 4, 24, 32)))
    assert len(out.depths) == 3 and tuple(out.depth.shape) == (1, 1, 24, 32)


def test_paper_network_has_about_18_2_million_parameters():
    net = StereoSpike.paper()
    n = sum(p.numel() for p in net.parameters())
    # 4*32*25 + ... by hand: encoder 4,355,200 + bottleneck 9,437,184 + decoder 4,352,000 + readout 4,324
    assert n == 18_148_708
    assert abs(n - 18.2e6) / 18.2e6 < 0.01
    assert net.sizes[-1] == (17, 22)  # conv4 output of 260x346, as in the paper


def test_one_step_if_uses_atan_surrogate():
    x = torch.tensor([0.5, 1.0, 1.2, 3.0], requires_grad=True)
    s = OneStepIF()(x)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0]
    s.sum().backward()
    u = x.detach() - 1.0
    torch.testing.assert_close(x.grad, 2.0 / (2 * (1 + (math.pi / 2 * 2.0 * u) ** 2)))


def test_plif_one_step_is_if_with_learnable_gain():
    n = OneStepPLIF(tau0=3.0, input_gain=10.0)
    assert float(n.gain().detach()) == pytest.approx(10.0 / 3.0)
    x = torch.tensor([0.29, 0.31])
    assert n(x).tolist() == [0.0, 1.0]
    n(torch.tensor([0.5])).sum().backward()
    assert n.w.grad is not None and float(n.w.grad) != 0.0
    net = tiny(neuron="plif")
    assert sum(isinstance(m, OneStepPLIF) for m in net.modules()) == len(net.unit_names)


def test_ann_twin_has_same_graph_with_batchnorm():
    snn, ann = tiny(), StereoUNetANN(base=2, levels=2, n_res=1, input_size=(13, 19), activation="tanh")
    assert [(n.name, n.inputs) for n in snn.graph()] == [(n.name, n.inputs) for n in ann.graph()]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in ann.modules()) == len(ann.unit_names)
    out = ann(counts((2, 4, 13, 19)))
    assert tuple(out.depth.shape) == (2, 1, 13, 19)


def test_bad_arguments_name_the_problem():
    net = tiny()
    with pytest.raises(ValueError, match=r"expects input \(B, 4, 13, 19\)"):
        net(torch.zeros(1, 4, 12, 19))
    with pytest.raises(ValueError, match="too small for 4 levels"):
        StereoSpike(input_size=(8, 8))
    with pytest.raises(ValueError, match="neuron kind 'lif'"):
        StereoSpike(neuron="lif", input_size=(16, 16), levels=2)
    with pytest.raises(ValueError, match="activation 'gelu'"):
        StereoUNetANN(activation="gelu", input_size=(16, 16), levels=2)


def test_init_depth_sets_the_coarsest_readout_bias():
    net = tiny(init_depth=3.5)
    with torch.no_grad():
        for name, m in net.layers.items():
            if name.startswith("pred") and name.endswith("conv"):
                m.weight.zero_()
    out = net(counts((1, 4, 13, 19)))
    assert torch.all(out.depth == 3.5)
