"""Run summaries and the comparison table: schema validation, clear errors, the training-loop adapter, CLI."""
import json

import pytest

from spikes.cli import main
from spikes.reports import SummaryError, comparison_rows, load_summary, parse_summary, write_summary


def _summary(**over):
    d = {"model": "conv_snn", "task": "digits", "metric_name": "accuracy", "metric": 0.9,
         "per_layer": [{"layer": "conv", "synops": 1000.0},
                       {"layer": "lif1", "firing_rate": 0.05, "density": 0.05, "neurons": 100, "steps": 10},
                       {"layer": "lif2", "firing_rate": 0.2, "neurons": 10, "steps": 10}],
         "backends": {"lava-fixed": {"metric": 0.85, "per_layer": [
             {"layer": "conv", "synops": 400.0},
             {"layer": "lif1", "firing_rate": 0.02, "neurons": 100, "steps": 10},
             {"layer": "lif2", "firing_rate": 0.1, "neurons": 10, "steps": 10}]}}}
    d.update(over)
    return d


def test_rows_are_hand_computed():
    rows = comparison_rows([parse_summary(_summary())])
    torch_row, chip = rows
    assert (torch_row["backend"], chip["backend"]) == ("torch", "lava-fixed")
    # neuron-weighted mean rate: (0.05*1000 + 0.2*100) / 1100 = 70/1100
    assert torch_row["mean_rate"] == pytest.approx(70 / 1100)
    assert chip["mean_rate"] == pytest.approx((20 + 10) / 1100)
    assert torch_row["synops"] == 1000.0 and chip["synops"] == 400.0
    # 1000*23.6 + 1100*81 + 70*1.7 pJ = 112819 pJ = 0.112819 uJ
    assert torch_row["energy_uj"] == pytest.approx(0.112819)
    assert chip["metric"] == 0.85 and torch_row["layer_rates"] == "lif1=0.05 lif2=0.2"


def test_round_trip_and_training_loop_summary(tmp_path):
    s = parse_summary(_summary(label="run A", spike_penalty=1e-3))
    write_summary(tmp_path, s)
    back = load_summary(tmp_path)
    assert back.to_dict() == s.to_dict() and back.label == "run A"
    # the training loop's summary.json (spikes.training) is converted: test_accuracy, layers, config
    loop = {"test_accuracy": 0.75, "dataset": "digits-events", "config": {"model": "mlp_snn", "neuron": "lif"},
            "layers": [{"layer": "features.0", "role": "synapse", "firing_rate": None, "synops_per_sample": 50.0,
                        "synops": 500.0, "density": 1.0, "neurons": None, "steps": None},
                       {"layer": "features.1", "role": "neuron", "firing_rate": 0.1, "density": 0.1,
                        "neurons": 64, "steps": 8, "synops": None, "synops_per_sample": None}]}
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "summary.json").write_text(json.dumps(loop))
    s2 = load_summary(tmp_path / "loop")
    assert (s2.model, s2.task, s2.metric, s2.metric_name) == ("mlp_snn", "digits-events", 0.75, "accuracy")
    assert s2.per_layer[0]["synops"] == 50.0 and s2.per_layer[1]["neurons"] == 64


@pytest.mark.parametrize("bad, message", [
    ({"model": None}, "'model'"),
    ({"metric": "high"}, "metric"),
    ({"per_layer": [{"layer": "lif1", "firing_rate": 1.5}]}, "lif1.*firing_rate"),
    ({"backends": {"sim": {"metric": 0.5, "per_layer": [{"firing_rate": 0.1}]}}}, "sim.*layer"),
    ({"raster": {"layer": "a", "steps": 2, "neurons": 2, "t": [5], "i": [0]}}, "raster"),
])
def test_bad_summary_names_the_problem(bad, message):
    with pytest.raises(SummaryError, match=message):
        parse_summary(_summary(**bad), "runs/x/summary.json")


def test_compare_cli(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "summary.json").write_text(json.dumps(_summary(label="dense")))
    (b / "summary.json").write_text(json.dumps(_summary(label="sparse", metric=0.8)))
    assert main(["compare", str(a), str(b), "--csv", str(tmp_path / "t.csv")]) == 0
    out = capsys.readouterr().out
    assert "dense" in out and "sparse" in out and "lava-fixed" in out and "0.1128" in out
    assert (tmp_path / "t.csv").read_text().count("\n") == 5   # header + 2 runs x (torch + lava-fixed)
    # missing and corrupt summaries: exit code 2 and the file named
    (b / "summary.json").write_text("{not json")
    assert main(["compare", str(a), str(b)]) == 2
    assert str(b / "summary.json") in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "nope")]) == 2
    assert str(tmp_path / "nope" / "summary.json") in capsys.readouterr().err


def test_reference_rates_round_trip_validate_and_set_the_plot(tmp_path):
    """A backend that ran fewer samples carries torch's rates on those samples: kept through JSON, checked, and
    the torch-vs-chip plot pairs the backend's rates with them instead of torch's over all samples."""
    from spikes.reports.plots import torch_vs_chip_figure

    d = _summary()
    d["backends"]["lava-fixed"].update(samples=10, reference_rates={"lif1": 0.02, "lif2": 0.1})
    s = parse_summary(d)
    write_summary(tmp_path, s)
    back = load_summary(tmp_path)
    assert back.backends["lava-fixed"].reference_rates == {"lif1": 0.02, "lif2": 0.1}
    points = torch_vs_chip_figure([back]).axes[0].collections[0].get_offsets()
    assert sorted(map(tuple, points.tolist())) == [(0.02, 0.02), (0.1, 0.1)]    # on the diagonal: agreement
    bad = _summary()
    bad["backends"]["lava-fixed"]["reference_rates"] = {"lif1": "high"}
    with pytest.raises(SummaryError, match=r"reference_rates\['lif1'\]"):
        parse_summary(bad)
