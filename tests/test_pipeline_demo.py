"""The demo pipeline: stages produce loadable summaries and a report; missing pieces are skipped, not faked."""
import json

import numpy as np
import pytest
import torch

from spikes.cli import main
from spikes.pipeline import demo
from spikes.pipeline.demo import Stage, run_demo
from spikes.reports import load_summary, mean_rate


def test_gt_rows_agree_with_the_models_own_energy():
    from spikes.models.gt_network import GTNetwork, GTNetworkConfig, evaluate
    from spikes.pipeline.gt import gt_layer_rows

    torch.manual_seed(0)
    net = GTNetwork(4, 3, GTNetworkConfig(iterations=20), seed=0)
    x = np.random.default_rng(0).random((6, 4))
    rows = gt_layer_rows(net, x)
    assert [r["neurons"] for r in rows] == [2 * 5, 2 * (5 + 3)]         # (4 features + bias), + 3 label units
    # spikes / (neurons x iterations) over the layers == the model's energy of its predicting run
    assert mean_rate(rows) == pytest.approx(evaluate(net, x, np.zeros(6, dtype=int))["energy"])


def test_demo_runs_skips_and_reports_failures(tmp_path, monkeypatch, capsys):
    stages = (
        Stage("gt", "GT", "spikes.pipeline.gt:run_gt_stage", ("spikes.models.gt_network:GTNetwork",)),
        Stage("needs_missing", "missing piece", "spikes.pipeline.gt:run_gt_stage", ("spikes.deploy:no_such_api",)),
        Stage("broken", "raises", "spikes.energy:estimate_energy", ()),      # wrong signature -> TypeError
    )
    monkeypatch.setattr(demo, "STAGES", stages)
    monkeypatch.setattr(demo, "STAGE_NAMES", tuple(s.name for s in stages))
    res = run_demo(tmp_path, quick=True, progress=False, log=lambda m: None, lava_samples=1)
    status = {s.name: s.status for s in res.stages}
    assert status == {"gt": "ok", "needs_missing": "skipped", "broken": "failed"}
    skipped = next(s for s in res.stages if s.name == "needs_missing")
    assert skipped.summaries == [] and "spikes.deploy.no_such_api" in skipped.reason
    assert "TypeError" in next(s for s in res.stages if s.name == "broken").reason
    assert len(res.summaries) == 1                                        # nothing made up for the others
    gt = load_summary(tmp_path / "gt_wine_quick")
    assert gt.model == "gt_network2" and 0 <= gt.metric <= 1
    assert {k: b.samples for k, b in gt.backends.items()} == {"sim": 45, "lava-fixed": 1}     # deployed, GT deployer
    html = res.report.read_text()
    assert "needs_missing: skipped" in html and "broken: failed" in html and "lava-fixed ran the first 1 of 45" in html
    assert "GT network2" in (tmp_path / "comparison.md").read_text()
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "gt_wine_quick")]) == 0
    assert "sklearn-wine" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown stage"):
        run_demo(tmp_path, stages=["nope"])


@pytest.mark.slow
def test_conv_stage_trains_measures_and_deploys_to_sim(tmp_path, monkeypatch):
    from spikes.pipeline import classifier
    from spikes.pipeline.backends import deploy_hook

    monkeypatch.setattr(classifier, "QUICK", {**classifier.QUICK, "train_limit": 64, "test_limit": 24,
                                              "n_time_bins": 4, "batch_size": 16})
    res = classifier.run_classifier_stage(tmp_path, quick=True, progress=False,
                                          backends=deploy_hook(backends=("sim",), progress=False))
    assert res.status == "ok"
    s = load_summary(tmp_path / "conv_snn_quick")
    loop = json.loads((tmp_path / "conv_snn_quick" / "summary.json").read_text())
    # the run directory's summary keeps the training loop's keys and adds the comparison schema
    assert loop["n_test"] == 24 and loop["test_accuracy"] == pytest.approx(s.metric)
    assert {r["layer"] for r in s.per_layer if r["firing_rate"] is not None} == {"features.1", "features.4", "output"}
    sim = s.backends["sim"]
    assert sim.samples == 24 and [r["layer"] for r in sim.per_layer] == ["features.1", "features.4", "output"]
    torch_in = next(r["synops"] for r in s.per_layer if r["layer"] == "features.0")
    # same input events and fan-out, minus the synapses whose weight quantises to 0 (not stored on chip)
    assert 0.9 * torch_in <= sim.per_layer[0]["synops"] <= torch_in
    assert s.raster is not None and set(s.neuron_rates) == {"features.1", "features.4", "output"}


@pytest.mark.slow
def test_eprop_stage_deploys_the_rsnn_to_sim_with_rows(tmp_path, monkeypatch):
    from spikes.pipeline import eprop
    from spikes.pipeline.backends import deploy_hook

    monkeypatch.setattr(eprop, "QUICK", {**eprop.QUICK, "train_limit": 64, "test_limit": 24, "n_time_bins": 6,
                                         "n_rec": 16})
    res = eprop.run_eprop_stage(tmp_path, quick=True, progress=False,
                                backends=deploy_hook(backends=("sim",), progress=False))
    assert res.status == "ok" and not any("not deployed" in n for n in res.notes), res.notes
    s = load_summary(tmp_path / "eprop_alif_quick")
    assert [r["layer"] for r in s.per_layer] == ["rec"]
    sim = s.backends["sim"]
    assert sim.samples == 24 and 0.0 <= sim.metric <= 1.0
    rec, readout = sim.per_layer
    assert (rec["layer"], rec["neurons"], rec["steps"]) == ("rec", 16, 6)
    assert (readout["layer"], readout["firing_rate"], readout["neurons"], readout["steps"]) == ("readout", None, 10, 6)
    # synops on the lowered network: every input event reaches the 16 neurons, every recurrent spike the 16
    # rows of the dense recurrent matrix (zero diagonal included) and the 10 readout neurons
    xt, _ = eprop.pooled_sequences("test", 6, 24)
    spikes = rec["firing_rate"] * 16 * 6 * 24
    assert rec["synops"] == pytest.approx((float(xt.sum()) * 16 + spikes * 16) / 24)
    assert readout["synops"] == pytest.approx(spikes * 10 / 24)
    # sim's rate is the torch model's up to quantisation; the synops totals compare (torch: N - 1 recurrent)
    assert rec["firing_rate"] == pytest.approx(s.per_layer[0]["firing_rate"], abs=0.02)
    assert rec["synops"] + readout["synops"] == pytest.approx(s.per_layer[0]["synops"], rel=0.03)
