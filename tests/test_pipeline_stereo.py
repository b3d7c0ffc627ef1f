"""Deploying StereoSpike in the demo: chip-side MDE and per-layer rows against the torch model, the torch
probe's own counts and hand computations; the stage wires the deployer into the hook."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from spikes.graph import capture
from spikes.deploy.network import lower
from spikes.deploy.quantize import quantize
from spikes.metrics import SpikeProbe
from spikes.models.stereospike import StereoSpike
from spikes.models.stereospike.metrics import mean_depth_error
from spikes.pipeline.stereo import deploy_stereo, depth_of, frame_outputs, mde

SIZE = (16, 20)


def small_model(seed: int = 0) -> StereoSpike:
    """A random StereoSpike (IF) whose units fire at 10-70 %, readout offset 2 m."""
    torch.manual_seed(seed)
    m = StereoSpike(base=3, levels=2, n_res=1, input_size=SIZE, init_depth=2.0).eval()
    with torch.no_grad():
        for name, layer in m.layers.items():
            if isinstance(layer, nn.Conv2d):
                fan = layer.weight[0].numel() ** 0.5
                layer.weight.normal_(0.0 if name.startswith("dec") else 0.15 / fan, 2.5 / fan)
    return m


def data(n: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Event counts (1, N, 4, H, W) and depth (N, H, W) in metres with a NaN (invalid) band."""
    rng = np.random.default_rng(seed)
    x = rng.poisson(0.6, size=(1, n, 4, *SIZE)).astype(np.float64)
    y = rng.uniform(1.0, 4.0, size=(n, *SIZE)).astype(np.float32)
    y[:, :3] = np.nan
    return x, y


def test_sim_rows_and_mde_against_torch_and_hand_counts():
    m = small_model()
    x, y = data()
    info: dict = {}
    res = deploy_stereo(m, x, y, backends=("sim",), progress=False, report=info)["sim"]
    rows = res.per_layer
    assert res.samples == 4 and [r["layer"] for r in rows] == m.unit_names + ["depth"]
    with torch.no_grad(), SpikeProbe(m, batch_dim=0) as probe:
        out = m(torch.as_tensor(x[0], dtype=torch.float32))
    torch_syn = {r["layer"]: r["synops_per_sample"] for r in probe.table() if r["role"] == "synapse"}
    for r in rows[:-1]:
        density = float((out.activations[r["layer"]] != 0).float().mean())
        assert r["firing_rate"] == pytest.approx(density, abs=0.05)        # quantised weights: close to torch
        assert r["steps"] == 1 and r["neurons"] == out.activations[r["layer"]][0].numel()
    # input -> bottom conv: each nonzero count is one graded event reaching C_out x (taps inside the image)
    # synapses; SpikeProbe counts the same independently (autograd of a unit-weight conv)
    assert rows[0]["synops"] == pytest.approx(torch_syn["layers.bottom_conv"])
    readout = rows[-1]
    assert readout["firing_rate"] is None and readout["synops"] > 0 and readout["neurons"] == SIZE[0] * SIZE[1]
    # MDE: mean |D_hat - D| over the non-NaN pixels of the decoded readout, by hand
    q = quantize(lower(capture(m, (4, *SIZE))), input_max=float(x.max()))
    depth = depth_of(q, frame_outputs(q, x, "sim"))[:, 0]
    assert res.metric == pytest.approx(float(np.nanmean(np.abs(depth - y))), rel=1e-6)
    ref = mean_depth_error(out.depth, torch.as_tensor(y))
    assert res.metric == pytest.approx(ref, rel=0.05) and mde(info["frame_errors"]["torch"]) == pytest.approx(ref)
    assert set(info["agreement"]["sim"]) == set(m.unit_names) and min(info["agreement"]["sim"].values()) > 0.8


def test_deployer_refuses_missing_ground_truth():
    m = small_model()
    x, _ = data(2)
    with pytest.raises(ValueError, match="depth maps"):
        deploy_stereo(m, x, None, backends=("sim",), progress=False)


@pytest.mark.lava
@pytest.mark.slow
def test_lava_fixed_rows_and_mde_equal_sim_on_the_same_frame():
    pytest.importorskip("lava")
    m = small_model(1)
    x, y = data(1, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = deploy_stereo(m, x, y, backends=("sim", "lava-fixed"), lava_samples=1, progress=False)
    assert res["sim"].per_layer == res["lava-fixed"].per_layer         # sim is bit-exact with lava-fixed
    assert res["sim"].metric == res["lava-fixed"].metric and res["lava-fixed"].samples == 1
    assert all(r["firing_rate"] > 0 for r in res["sim"].per_layer[:-1])


@pytest.mark.slow
def test_stereo_stage_deploys_and_rows_line_up_with_torch(tmp_path, monkeypatch, capsys):
    import json

    from spikes.cli import main
    from spikes.pipeline import stereo
    from spikes.pipeline.backends import deploy_hook
    from spikes.reports import load_summary
    from spikes.training.checkpoint import load_model

    monkeypatch.setattr(stereo, "DATA_OPTIONS", {"train_limit": 8, "test_limit": 3})
    res = stereo.run_stereo_stage(tmp_path, quick=True, progress=False,
                                  backends=deploy_hook(backends=("sim",), progress=False))
    assert res.status == "ok"
    run = tmp_path / "stereospike_quick_beta0"
    s = load_summary(run)
    sim = s.backends["sim"]
    units = [r["layer"] for r in s.per_layer if r["firing_rate"] is not None]
    assert sim.samples == 3 and [r["layer"] for r in sim.per_layer if r["firing_rate"] is not None] == units
    assert sim.metric == pytest.approx(s.metric, rel=0.05)
    report = (run / "deploy.md").read_text()
    assert "Quantisation" in report and "bottom_sn" in report
    assert any("deployed in" in n and "sim" in n for n in res.notes)
    # the trainer's run directory: its summary keeps the trainer's keys, its checkpoint the one format
    raw = json.loads((run / "summary.json").read_text())
    assert raw["config"]["model"]["kind"] == "stereospike" and raw["n_train"] == 8 and raw["epochs_done"] == 1
    model, _, ckpt = load_model(run / "checkpoint.pt")
    assert units == model.unit_names and ckpt["config"]["data"]["dataset"] == "stereo-embedded"
    assert main(["export", str(run / "checkpoint.pt"), "--to", "lava", "--out", str(tmp_path / "net.npz")]) == 0
    assert main(["run", str(run / "checkpoint.pt"), "--backend", "sim", "--samples", "2"]) == 0
    assert "mde" in capsys.readouterr().out.lower()
    # a second stage run reuses the finished run
    mtime = (run / "checkpoint.pt").stat().st_mtime_ns
    again = stereo.run_stereo_stage(tmp_path, quick=True, progress=False)
    assert again.summaries[0].metric == s.metric and (run / "checkpoint.pt").stat().st_mtime_ns == mtime
