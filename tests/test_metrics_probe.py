"""SpikeProbe vs hand-computed firing rates, densities and synaptic-operation counts."""
from __future__ import annotations

import csv
import io

import pytest
import torch
from torch import nn

from spikes.layers import TimeDistributed
from spikes.metrics import SpikeProbe, to_csv, to_markdown
from spikes.neurons import IF, LIF


def _row(probe: SpikeProbe, layer: str) -> dict:
    return next(r for r in probe.table() if r["layer"] == layer)


def test_if_firing_rate_hand_computed():
    # IF, v_th = 1, reset to zero, constant input 0.5: v = 0.5, 1.0 (not > 1), 1.5 -> spike, reset; period 3.
    # Over T = 6 steps: spikes at t = 2 and t = 5 -> 2 / 6 per neuron per step.
    model = nn.Sequential(IF(v_th=1.0, reset="zero"))
    x = torch.full((6, 2, 3), 0.5)
    with SpikeProbe(model) as probe:
        model(x)
    r = _row(probe, "0")
    assert r["role"] == "neuron" and r["neurons"] == 3 and r["steps"] == 6 and r["samples"] == 2
    assert r["spikes"] == 2 * 2 * 3
    assert r["firing_rate"] == pytest.approx(1 / 3)
    assert r["density"] == pytest.approx(1 / 3)


def test_linear_synops_are_input_spikes_times_out_features():
    lin = nn.Linear(5, 7)
    model = nn.Sequential(TimeDistributed(lin), LIF())
    x = torch.zeros(3, 2, 5)                       # T=3, B=2
    x[0, 0, [0, 3]] = 1
    x[2, 1, 4] = 1                                 # 3 spikes in total
    with SpikeProbe(model) as probe:
        model(x)
    r = _row(probe, "0")                           # the TimeDistributed-wrapped Linear is reported as "0"
    assert r["kind"] == "Linear" and r["role"] == "synapse"
    assert r["input_events"] == 3 and r["input_binary"] is True
    assert r["synops"] == 3 * 7
    assert r["synops_per_sample"] == pytest.approx(3 * 7 / 2)
    assert r["input_density"] == pytest.approx(3 / 30)


def _conv_synops(conv: nn.Module, spikes_at: list[tuple[int, int, int]], shape=(1, 2, 4, 4)) -> float:
    x = torch.zeros(shape)
    for c, i, j in spikes_at:
        x[0, c, i, j] = 1
    with SpikeProbe(conv, batch_dim=0) as probe:
        conv(x)
    return _row(probe, "Conv2d")["synops"]


def test_conv_synops_exact_at_borders():
    conv = nn.Conv2d(2, 3, 3, padding=1)          # 4x4 -> 4x4, C_out = 3
    assert _conv_synops(conv, [(0, 0, 0)]) == 3 * 4      # corner: 2x2 output positions
    assert _conv_synops(conv, [(1, 0, 2)]) == 3 * 6      # edge: 2x3
    assert _conv_synops(conv, [(0, 1, 1)]) == 3 * 9      # interior: C_out k^2
    assert _conv_synops(conv, [(0, 0, 0), (1, 1, 2), (0, 3, 3)]) == 3 * (4 + 9 + 4)


def test_conv_synops_stride_and_groups():
    # stride 2, pad 1, 4x4 -> 2x2 outputs centred on input rows/cols 0 and 2 (window +-1).
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    assert _conv_synops(conv, [(0, 0, 0)]) == 3 * 1       # only output (0, 0) sees it
    assert _conv_synops(conv, [(0, 1, 1)]) == 3 * 4       # rows {0,2} x cols {0,2}
    assert _conv_synops(conv, [(0, 3, 3)]) == 3 * 1
    grouped = nn.Conv2d(4, 8, 3, padding=1, groups=2)     # each input reaches 8 / 2 output channels
    assert _conv_synops(grouped, [(3, 1, 2)], shape=(1, 4, 4, 4)) == 4 * 9


def test_density_of_any_layer_and_accumulation_over_calls():
    model = nn.Sequential(nn.ReLU())
    with SpikeProbe(model, batch_dim=0) as probe:
        model(torch.tensor([[-1.0, 0.0, 2.0, 3.0]]))      # 2 of 4 nonzero
        model(torch.tensor([[1.0, 1.0, 1.0, -5.0]]))      # 3 of 4
    r = _row(probe, "0")
    assert r["role"] == "other" and r["calls"] == 2 and r["samples"] == 2
    assert r["density"] == pytest.approx(5 / 8)


def test_probe_leaves_model_unchanged_and_removes_hooks():
    model = nn.Sequential(TimeDistributed(nn.Conv2d(2, 4, 3, padding=1)), LIF(), TimeDistributed(nn.Flatten()),
                          TimeDistributed(nn.Linear(4 * 6 * 6, 3)), LIF())
    x = (torch.rand(4, 2, 2, 6, 6) < 0.3).float()
    ref = model(x)
    with SpikeProbe(model) as probe:
        out = model(x)
    assert torch.equal(out, ref)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    layers = [r["layer"] for r in probe.table()]
    assert layers == ["0", "1", "3", "4"]                 # Flatten is skipped by default
    model(x)                                              # detached: no more counting
    assert _row(probe, "1")["calls"] == 1
    # the probe's rate equals the mean of the spike tensor computed independently
    hidden = model[1](model[0](x))
    assert _row(probe, "1")["firing_rate"] == pytest.approx(float(hidden.detach().mean()))


def test_layer_selection_and_errors():
    model = nn.Sequential(TimeDistributed(nn.Linear(3, 3)), LIF())
    with SpikeProbe(model, layers=[LIF]) as probe:
        model(torch.rand(2, 1, 3))
    assert [r["layer"] for r in probe.table()] == ["1"]
    with pytest.raises(ValueError, match="no layer named"):
        SpikeProbe(model, layers=["nope"])


def test_table_helpers_roundtrip():
    rows = [{"layer": "a", "firing_rate": 0.25, "synops": None}, {"layer": "b", "firing_rate": 0.5, "synops": 12.0}]
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed == [{"layer": "a", "firing_rate": "0.25", "synops": ""}, {"layer": "b", "firing_rate": "0.5", "synops": "12.0"}]
    md = to_markdown(rows).splitlines()
    assert md[0].split("|")[1].strip() == "layer" and len(md) == 4
    assert md[3].split("|")[2].strip() == "0.5"


def test_reset_zeroes_totals_and_keeps_counting():
    model = nn.Sequential(IF(v_th=1.0, reset="zero"))
    with SpikeProbe(model) as probe:
        model(torch.full((6, 2, 3), 0.5))
        probe.reset()
        assert _row(probe, "0")["calls"] == 0 and probe.samples == 0
        model(torch.full((3, 1, 3), 0.6))        # v = 0.6, 1.2 -> spike, 0.6: 1 spike in 3 steps
    r = _row(probe, "0")
    assert r["calls"] == 1 and r["samples"] == 1 and r["spikes"] == 3
    assert r["firing_rate"] == pytest.approx(1 / 3)


def test_recurrent_population_rate_and_recurrent_synops():
    from spikes.layers import RecurrentLIF
    from spikes.neurons import NeuronParameters
    model = nn.Sequential(RecurrentLIF(4, 5, NeuronParameters(alpha=0.9, v_th=0.5), zero_diagonal=True))
    with torch.no_grad():
        model[0].input.weight.fill_(0.4)
    x = (torch.rand(6, 3, 4) < 0.6).float()
    with torch.no_grad():
        s = model(x)
        with SpikeProbe(model) as probe:
            model(x)
    assert s.sum() > 0
    r = _row(probe, "0")
    assert r["role"] == "neuron" and r["firing_rate"] == pytest.approx(float(s.mean()))
    assert r["synops"] == float(s[:-1].sum()) * 4           # each spike reaches the 4 other neurons next step
    inp = _row(probe, "0.input")
    assert inp["role"] == "synapse" and inp["synops"] == float((x != 0).sum()) * 5
