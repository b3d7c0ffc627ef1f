"""StereoSpike on the deploy stack: the graph against the torch model itself (torch timing and Lava's
pipelined timing), ``sim`` against ``lava-fixed`` bit for bit, ``lava-float`` against torch, the ANN refused."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from spikes.deploy.backends import run
from spikes.graph import Integrator, Neurons, Scale, capture
from spikes.deploy.network import lower
from spikes.deploy.quantize import quantize
from spikes.models.stereospike import StereoSpike, StereoUNetANN
from spikes.pipeline.stereo import depth_of, frame_outputs

SIZE = (16, 20)


def model(neuron: str = "if", n_res: int = 1, levels: int = 2, base: int = 3, seed: int = 0) -> StereoSpike:
    """A small random StereoSpike whose every unit fires at 10-70 % (weights over PLIF's gain; readout biases)."""
    torch.manual_seed(seed)
    m = StereoSpike(base=base, levels=levels, n_res=n_res, input_size=SIZE, neuron=neuron, init_depth=2.0).eval()
    with torch.no_grad():
        for name, layer in m.layers.items():
            if isinstance(layer, nn.Conv2d):
                unit = m.layers[name.replace("conv", "sn")] if name.replace("conv", "sn") in m.layers else None
                fan = layer.weight[0].numel() ** 0.5
                layer.weight.normal_(0.0 if name.startswith("dec") else 0.15 / fan, 2.5 / fan)
                layer.weight.div_(float(unit.gain()) if unit is not None else 1.0)
                if layer.bias is not None:
                    layer.bias.add_(torch.randn(()) * 0.2)
    return m


def frames(n: int = 3, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((n, 4, *SIZE), 0.6), generator=g)


def reference(m: StereoSpike, x: torch.Tensor):
    with torch.no_grad():
        return m(x)


def agreement(out: dict, ref) -> dict[str, float]:
    return {k: float((torch.as_tensor(out[k]).double() == s.double()).double().mean())
            for k, s in ref.activations.items()}


VARIANTS = [("if", 1, 2), ("plif", 1, 2), ("if", 0, 2), ("plif", 2, 3)]


def test_graph_mirrors_the_model_node_by_node():
    m = model("plif", n_res=1, levels=2)
    g = capture(m, (4, *SIZE))
    assert sorted(g.populations) == sorted(m.unit_names + ["depth"])
    for name in m.unit_names:   # PLIF: its learned gain is a Scale node in front of a memoryless IF population
        node = g.nodes[name]
        assert isinstance(node, Neurons) and node.params.alpha_value == 0.0 and node.params.reset == "zero"
        gain = g.nodes[f"{name}_gain"]
        assert isinstance(gain, Scale) and gain.gain == pytest.approx(float(m.layers[name].gain().detach()))
    # additive joins are several edges into one node: skip2 = dec2_sn + enc1_sn feeds dec1_up and pred2_up
    assert sorted(g.predecessors("dec1_up")) == ["dec2_sn", "enc1_sn"]
    assert sorted(g.predecessors("pred2_up")) == ["dec2_sn", "enc1_sn"]
    assert sorted(g.predecessors("dec2_up")) == ["enc2_sn", "res1_sn2"]          # SEW-ADD res1 = sn2 + enc2
    readout = g.nodes["depth"]
    assert isinstance(readout, Integrator) and readout.alpha == 0.0
    assert sorted(g.predecessors("depth")) == ["pred1_conv", "pred2_conv"]
    bias = sum(float(m.layers[f"pred{k}_conv"].bias.detach()) for k in (1, 2))
    assert readout.bias == pytest.approx(bias) and all(g.nodes[f"pred{k}_conv"].bias is None for k in (1, 2))


@pytest.mark.parametrize("neuron,n_res,levels", VARIANTS)
def test_graph_forward_equals_the_model(neuron, n_res, levels):
    m = model(neuron, n_res, levels)
    x = frames()
    ref = reference(m, x)
    out = frame_outputs(capture(m, (4, *SIZE)), x[None].numpy(), "torch")
    agree = agreement(out, ref)
    assert min(agree.values()) >= 0.99, agree
    assert all(0.05 < float(s.mean()) < 0.9 for s in ref.activations.values())   # every unit is exercised
    np.testing.assert_allclose(out["depth"], ref.depth.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("neuron,n_res,levels", VARIANTS[:2])
def test_sim_float_with_lava_timing_equals_the_model(neuron, n_res, levels):
    """Each population answers at its latency; the readout is 0 before its latency L and the depth at L."""
    m = model(neuron, n_res, levels)
    x = frames()
    ref = reference(m, x)
    net = lower(capture(m, (4, *SIZE)))
    lat = {k: p.latency for k, p in net.populations.items()}
    assert lat["depth"] == max(lat.values()) and lat["bottom_sn"] == 1
    out = frame_outputs(net, x[None].numpy(), "sim-float")
    assert min(agreement(out, ref).values()) >= 0.99
    np.testing.assert_allclose(depth_of(net, out), ref.depth.numpy(), rtol=1e-4, atol=1e-4)
    steps = np.concatenate([x[None].numpy(), np.zeros((lat["depth"], *x.shape))])
    trace = run(net, steps, backend="sim-float", states=False)["depth"]["values"]
    assert np.all(trace[:lat["depth"]] == 0.0)        # the bias switches on with the first input
    np.testing.assert_allclose(trace[lat["depth"]], ref.depth.numpy(), rtol=1e-4, atol=1e-4)


def test_fixed_point_readout_decodes_the_float_readout_of_its_own_spikes():
    """sim's integer depth, decoded, against the float readout (the lowered float matrices and bias) of the
    very spikes sim produced: only the readout weights' 8-bit rounding separates them. Spikes: the first
    population (graded counts through one rounded conv) agrees with torch; deeper ones flip where the
    rounding crosses a threshold (about 1 % of the weight scale; compounding in this random net)."""
    m = model("if", 1, 2)
    x = frames(4)
    ref = reference(m, x)
    net = lower(capture(m, (4, *SIZE)))
    q = quantize(net, input_max=float(x.max()))
    out = frame_outputs(q, x[None].numpy(), "sim")
    assert out["depth"].dtype == np.int64
    agree = agreement(out, ref)
    assert agree["bottom_sn"] >= 0.99 and min(agree.values()) >= 0.8, agree
    readout = net.populations["depth"]
    float_depth = np.tile(readout.bias, (4, 1))
    for proj in net.incoming("depth"):
        float_depth += (proj.weight @ out[proj.src].reshape(4, -1).T.astype(np.float64)).T
    decoded = depth_of(q, out).reshape(4, -1)
    err = np.abs(decoded - float_depth).max() / np.abs(float_depth - readout.bias).max()
    assert err < 0.02, err
    assert abs(decoded.mean() - float_depth.mean()) < 0.01     # no offset (e.g. a clipped bias)


def test_ann_twin_and_bad_shapes_are_refused():
    ann = StereoUNetANN(base=2, levels=2, n_res=1, input_size=SIZE)
    with pytest.raises(ValueError, match="ANN twin"):
        capture(ann, (4, *SIZE))
    with pytest.raises(ValueError, match=r"input_shape must be \(4, 16, 20\)"):
        capture(model(), (4, 16, 21))


@pytest.mark.lava
@pytest.mark.slow
def test_sim_is_bit_exact_with_lava_fixed_on_stereospike_variants():
    """Spikes of every unit and the readout's integer values: sim == lava-fixed, at every step."""
    from spikes.deploy.lava_backend import run_lava

    jobs, sims = [], []
    variants = [("if", 1, 2), ("plif", 0, 2), ("if", 2, 2)]
    steps_needed = 1 + max(2 * levels + 2 * n_res + 2 for _, n_res, levels in variants)   # >= every latency
    for i, (neuron, n_res, levels) in enumerate(variants):
        m = model(neuron, n_res, levels, base=2 + i % 2, seed=i)
        x = frames(1, seed=10 + i)
        q = quantize(lower(capture(m, (4, *SIZE))), input_max=float(x.max()))
        assert q.populations["depth"].latency < steps_needed
        steps = np.concatenate([x[None].numpy(), np.zeros((steps_needed - 1, *x.shape))])
        jobs.append((q, {"input": steps[:, 0]}))
        sims.append(run(q, steps, backend="sim", states=False))
        # skip paths are delayed by more than one step: the Lava build must delay them
        assert any(p.delay > 2 and p.kind == "sparse" for p in q.projections)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lava = run_lava(jobs, fixed=True, states=False)
    for (q, _), s, l in zip(jobs, sims, lava):
        for pop in q.populations:
            key = "values" if pop == "depth" else "spikes"
            assert np.array_equal(s[pop][key][:, 0], l[pop][key]), pop
        assert np.abs(s["depth"]["values"]).max() > 0 and s["dec1_sn"]["spikes"].any()


@pytest.mark.lava
@pytest.mark.slow
def test_lava_float_agrees_with_the_torch_model():
    m = model("plif", 1, 2)
    x = frames(2)
    ref = reference(m, x)
    net = lower(capture(m, (4, *SIZE)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = frame_outputs(net, x[None].numpy(), "lava-float")
    assert min(agreement(out, ref).values()) >= 0.99
    np.testing.assert_allclose(depth_of(net, out), ref.depth.numpy(), rtol=1e-4, atol=1e-4)


def test_a_large_readout_bias_is_represented_not_clipped():
    """A depth readout's bias (metres) dwarfs its weights: the scale must leave room for the 13-bit
    mantissa << 7, or the decoded depth loses its offset."""
    from spikes.graph import Affine, Graph, Input, Output
    from spikes.neurons.dynamics import NeuronParameters

    p = NeuronParameters(alpha=0.0, reset="zero")
    g = Graph({"input": Input((3,)), "fc": Affine(np.full((2, 3), 2.0)), "lif": Neurons((2,), p),
               "ro": Affine(np.array([[0.01, -0.02], [0.03, 0.0]])), "depth": Integrator((2,), 0.0, 3.5),
               "output": Output((2,))},
              [("input", "fc"), ("fc", "lif"), ("lif", "ro"), ("ro", "depth"), ("depth", "output")])
    q = quantize(lower(g))
    assert next(r for r in q.report if r["layer"] == "depth")["bias_max_error"] < 1e-4
    x = np.zeros((4, 1, 3))
    x[0] = 1.0                                            # lif fires at step 1, the readout answers at 2
    values = q.populations["depth"].decode(run(q, x, backend="sim")["depth"]["values"][:, 0])
    np.testing.assert_allclose(values[2], [3.5 + 0.01 - 0.02, 3.5 + 0.03], atol=1e-3)
    np.testing.assert_allclose(values[3], [3.5, 3.5], atol=1e-4)
