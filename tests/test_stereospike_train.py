"""StereoSpike on the one trainer (spikes.pipeline.stereo_report), its evaluation, checkpoints and the
'spikes stereo' CLI on a tiny fake stereo set."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikes.models.stereospike import StereoSpike, StereoUNetANN
from spikes.models.stereospike.data import StereoData
from spikes.models.stereospike.metrics import evaluate, mean_depth_baseline
from spikes.options import ConfigError
from spikes.pipeline.stereo_report import PAPER_MILESTONES, stereo_config, train_and_evaluate, variant
from spikes.training.checkpoint import CheckpointError, load_checkpoint, load_model
from spikes.training.data import StereoSet


class FakeStereo(torch.utils.data.Dataset):
    """Left image = textured planes; depth = one near square (2 m) on a far wall (4 m); right view = left
    shifted by fb / depth px; event counts at the texture edges. 10 % of depth pixels NaN."""

    def __init__(self, path=None, split="train", n=None, h=16, w=24, fb=8.0):
        seed = {"train": 0, "val": 1, "test": 2}[split]
        n = n or {"train": 12, "val": 4, "test": 6}[split]
        rng = np.random.default_rng(seed)
        self.fb, self.items = fb, []
        for _ in range(n):
            depth = np.full((h, w), 4.0)
            y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 10)
            depth[y0:y0 + 8, x0:x0 + 10] = 2.0
            tex = (rng.random((h, w + 8)) > 0.5).astype(float)
            left = tex[:, :w]
            cols = np.arange(w)[None, :] + np.round(fb / depth).astype(int)
            right = np.take_along_axis(tex, cols, axis=1)
            ev = lambda a: np.abs(np.diff(a, axis=1, prepend=0))  # noqa: E731
            x = np.stack([ev(left), ev(left.T).T, ev(right), ev(right.T).T]).astype(np.float32)
            depth[rng.random((h, w)) < 0.1] = np.nan
            self.items.append((x, depth.astype(np.float32)))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def small_cfg(model=None, **train):
    return stereo_config({"base": 2, "levels": 2, "n_res": 1, **(model or {})},
                         {"epochs": 3, "batch_size": 4, "lr": 3e-3, "threads": 1, "progress": False, **train})


def fake_sets():
    return tuple(StereoSet(StereoData(FakeStereo(split=s), name=s), {"name": f"fake {s}"}) for s in ("train", "test"))


def epoch_losses(run_dir) -> list[float]:
    """Mean training loss per epoch from the trainer's metrics.jsonl (batches of equal size: 12 = 3 x 4)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = sorted({r["epoch"] for r in rows})
    return [float(np.mean([r["loss"] for r in rows if r["epoch"] == e])) for e in epochs]


def test_training_is_seeded_lowers_loss_and_checkpoints_round_trip(tmp_path):
    tr, te = fake_sets()
    assert tr.mean_depth() == pytest.approx(float(np.nanmean(np.stack([d for _, d in FakeStereo().items]))))
    cfg = small_cfg()
    assert cfg.train.scheduler == "step" and tuple(cfg.train.milestones) == PAPER_MILESTONES
    s1 = train_and_evaluate(cfg, tmp_path / "a", tr, te, log=lambda m: None)
    s2 = train_and_evaluate(cfg, tmp_path / "b", tr, te, log=lambda m: None)
    w1, w2 = (load_checkpoint(tmp_path / d / "checkpoint.pt")["weights"] for d in "ab")
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    l1 = epoch_losses(tmp_path / "a")
    assert l1 == epoch_losses(tmp_path / "b") and len(l1) == 3 and l1[-1] < l1[0]
    # the paper's schedule over 3 epochs: lr halved after epochs round(3 * 8/70) -> 1, round(3 * 42/70) = 2,
    # round(3 * 60/70) = 3; the log holds the lr after each step's scheduler step (3 steps per epoch)
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([3e-3 * f for f in (1, 1, .5, .5, .5, .25, .25, .25, .125)])
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["checkpoint.pt", "config.toml", "metrics.jsonl",
                                                                 "summary.json"]  # no temp file left behind
    m3, shape, ckpt = load_model(tmp_path / "a" / "checkpoint.pt")
    kw = ckpt["model"]["kwargs"]
    assert isinstance(m3, StereoSpike) and shape == (4, 16, 24) and ckpt["position"]["epoch"] == 3
    assert kw["input_size"] == [16, 24] and kw["fb"] == 8.0 and kw["init_depth"] == pytest.approx(tr.mean_depth())
    # the reloaded model gives the trainer's own test figures (computed on the model in memory)
    r3 = evaluate(m3, te.data)
    assert r3["fb"] == 8.0 and s1["test"] == r3
    assert r3["mde"] == pytest.approx(s1["test_mde"], rel=1e-6)
    assert r3["one_pixel_accuracy"] == pytest.approx(s1["test_one_pixel_accuracy"], rel=1e-6)
    assert set(r3["firing_rates"]) == set(m3.unit_names) == set(s1["firing_rates"])
    assert all(0.0 <= v <= 1.0 for v in r3["firing_rates"].values())
    assert s1["mean_firing_rate"] == pytest.approx(np.mean(list(r3["firing_rates"].values())))
    assert 0.0 <= r3["one_pixel_accuracy"] <= 1.0
    units = [r for r in s1["per_layer"] if r["firing_rate"] is not None]
    x, _ = te.batch([0, 1])
    with torch.no_grad():
        acts = m3(x).activations
    assert [r["layer"] for r in units] == m3.unit_names
    assert all(r["neurons"] == acts[r["layer"]][0].numel() and r["steps"] == 1 for r in units)
    # a finished run of the same config is reused as it is; another config in its directory is refused
    mtime = (tmp_path / "a" / "checkpoint.pt").stat().st_mtime_ns
    assert train_and_evaluate(small_cfg(progress=True), tmp_path / "a", tr, te) == json.loads(json.dumps(s1))
    assert (tmp_path / "a" / "checkpoint.pt").stat().st_mtime_ns == mtime
    with pytest.raises(ConfigError, match="model.base"):
        train_and_evaluate(small_cfg({"base": 3}), tmp_path / "a", tr, te, log=lambda m: None)
    with pytest.raises(FileExistsError, match="--resume"):
        train_and_evaluate(cfg, tmp_path / "a", tr, te, reuse=False)
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(ConfigError, match="init_from .*a.*checkpoint.pt.*do not fit"):
        train_and_evaluate(small_cfg({"base": 3}, init_from=str(tmp_path / "a" / "checkpoint.pt")), tmp_path / "c",
                           tr, te, log=lambda m: None)


def test_ann_twin_trains_and_reloads(tmp_path):
    tr, te = fake_sets()
    cfg = variant(small_cfg({"activation": "tanh"}, epochs=2), {"snn": False})
    s = train_and_evaluate(cfg, tmp_path / "ann", tr, te, log=lambda m: None)
    model, _, ckpt = load_model(tmp_path / "ann" / "checkpoint.pt")
    assert isinstance(model, StereoUNetANN) and model.activation == "tanh" and not ckpt["model"]["kwargs"]["snn"]
    assert "firing_rates" not in s["test"] and s["label"] == "StereoSpike ANN twin (tanh)"
    assert evaluate(model, te.data)["mde"] == pytest.approx(s["test_mde"], rel=1e-6)


def test_mean_depth_baseline_by_hand():
    tr, te = StereoData(FakeStereo(split="train")), StereoData(FakeStereo(split="test"))
    mean = np.nanmean(np.stack([d for _, d in FakeStereo(split="train").items]).astype(float))
    gt = np.stack([d for _, d in FakeStereo(split="test").items]).astype(float)
    assert mean_depth_baseline(tr, te) == pytest.approx(np.nanmean(np.abs(gt - mean)), rel=1e-5)


def test_spike_penalty_lowers_firing(tmp_path):
    tr, te = fake_sets()
    rates = []
    for beta in (0.0, 5.0):
        train_and_evaluate(small_cfg(spike_penalty=beta, epochs=4), tmp_path / f"b{beta:g}", tr, te, log=lambda m: None)
        model = load_model(tmp_path / f"b{beta:g}" / "checkpoint.pt")[0]
        rates.append(evaluate(model, tr.data)["mean_firing_rate"])
    assert rates[1] < rates[0]


def write_mvsec_layout(path, splits=None, n_frames=None, h=16, w=24, attrs=True):
    """FakeStereo's counts as MVSEC-layout events (one event per count, 10 ms before its depth frame)."""
    import h5py

    items = [it for s in ("train", "val", "test") for it in FakeStereo(split=s).items]
    n_frames = n_frames or len(items) + 1
    depth = np.zeros((n_frames, h, w), np.float32)  # frame 0 empty; 0 = invalid, as in MVSEC
    ev = {"left": [], "right": []}
    for k, (x, d) in enumerate(items[: n_frames - 1], start=1):
        depth[k] = np.nan_to_num(d, nan=0.0)
        for c in range(4):
            ys, xs = np.nonzero(x[c])
            reps = x[c][ys, xs].astype(int)
            rows = np.stack([np.repeat(xs, reps), np.repeat(ys, reps), np.full(reps.sum(), k * 0.05 - 0.01),
                             np.full(reps.sum(), 1.0 if c % 2 == 0 else -1.0)], 1)
            ev["left" if c < 2 else "right"].append(rows)
    with h5py.File(path, "w") as f:
        for cam in ev:
            f[f"davis/{cam}/events"] = np.concatenate(ev[cam]) if ev[cam] else np.zeros((0, 4))
        f["davis/left/depth_image_rect"] = depth
        f["davis/left/depth_image_rect_ts"] = np.arange(n_frames) * 0.05
        if attrs:
            f.attrs.update({"spikes_split_train": [1, 13], "spikes_split_val": [13, 17],
                            "spikes_split_test": [17, 23], "focal_px": 80.0, "baseline_m": 0.1})
    return path


def test_cli_train_eval_report_on_mvsec_layout_file(tmp_path, capsys):
    """End to end through spikes.datasets.MVSECStereo on a tiny MVSEC-layout file; the run directories are the
    trainer's, so spikes export / run read their checkpoints."""
    from spikes.cli import main
    from spikes.models.stereospike.data import open_split

    data = str(write_mvsec_layout(tmp_path / "fake.hdf5"))
    test = open_split(data, "test")
    assert len(test) == 6 and test.input_size == (16, 24) and test.fb == pytest.approx(8.0)   # file attrs 80 px x 0.1 m
    want = FakeStereo(split="test").items
    assert torch.equal(test.x, torch.from_numpy(np.stack([x for x, _ in want])))
    assert torch.equal(test.depth.isnan(), torch.from_numpy(np.isnan(np.stack([d for _, d in want]))))
    common = ["--data", data, "--base", "2", "--levels", "2", "--n-res", "1", "--epochs", "2", "--no-progress"]
    run = tmp_path / "t"
    assert main(["stereo", "train", *common, "--run-dir", str(run)]) == 0
    assert "test MDE" in capsys.readouterr().out
    saved = json.loads((run / "summary.json").read_text())
    assert saved["config"]["data"]["dataset"] == f"stereo:{tmp_path / 'fake.hdf5'}" and saved["epochs_done"] == 2
    assert saved["config"]["train"]["scheduler"] == "step" and saved["test"]["fb"] == pytest.approx(8.0)
    assert main(["stereo", "train", *common, "--run-dir", str(run)]) == 2        # an existing run: --resume or a new dir
    assert "--resume" in capsys.readouterr().err
    assert main(["stereo", "train", *common, "--run-dir", str(run), "--resume"]) == 0
    assert f"test MDE {saved['test']['mde']:.4f} m" in capsys.readouterr().out   # the finished run, reported again
    for extra in ([], ["--data", data]):        # the checkpoint's own data set, or the one named
        assert main(["stereo", "eval", str(run / "checkpoint.pt"), *extra, "--json", str(tmp_path / "e.json")]) == 0
        ev = json.loads((tmp_path / "e.json").read_text())
        assert ev["fb"] == pytest.approx(8.0) and ev["split"] == "test" and ev["mde"] == pytest.approx(saved["test"]["mde"])
    assert main(["export", str(run / "checkpoint.pt"), "--to", "lava", "--out", str(tmp_path / "net.npz")]) == 0
    assert (tmp_path / "net.npz").stat().st_size > 0
    assert main(["run", str(run / "checkpoint.pt"), "--backend", "sim", "--samples", "2"]) == 0
    rd = tmp_path / "r"
    assert main(["stereo", "report", *common, "--betas", "0", "2", "--finetune-epochs", "1", "--run-dir", str(rd)]) == 0
    report = json.loads((rd / "report.json").read_text())
    assert [r["run"] for r in report["rows"]] == ["snn_beta0", "snn_beta2", "snn_beta2_ft", "ann_sigmoid"]
    assert [r["model"] for r in report["rows"]] == ["snn", "snn", "snn", "ann"]
    ft = json.loads((rd / "snn_beta2_ft" / "summary.json").read_text())
    assert ft["config"]["train"]["init_from"] == str((rd / "snn_beta0" / "checkpoint.pt").resolve())
    assert ft["epochs_done"] == 1 and ft["config"]["train"]["spike_penalty"] == 2.0
    assert not json.loads((rd / "ann_sigmoid" / "summary.json").read_text())["config"]["model"]["snn"]
    assert (rd / "report.png").read_bytes()[:4] == b"\x89PNG" and "| snn_beta2 |" in (rd / "report.md").read_text()
    assert "snn_mde_at_least_50pct_below_baseline" in report["checks"]
    # a second report reuses every finished run (same figures, checkpoints untouched)
    mtimes = {p: p.stat().st_mtime_ns for p in rd.glob("*/checkpoint.pt")}
    assert main(["stereo", "report", *common, "--betas", "0", "2", "--finetune-epochs", "1", "--run-dir", str(rd)]) == 0
    assert json.loads((rd / "report.json").read_text())["rows"] == report["rows"]
    assert {p: p.stat().st_mtime_ns for p in rd.glob("*/checkpoint.pt")} == mtimes and len(mtimes) == 4
    capsys.readouterr()
    assert main(["stereo", "train", *common, "--data", str(tmp_path / "missing.h5"), "--run-dir", str(tmp_path / "x")]) == 2
    assert "missing.h5" in capsys.readouterr().err


def test_mvsec_directory_gives_split1(tmp_path):
    from spikes.models.stereospike.data import open_split

    for seq in ("indoor_flying1", "indoor_flying2", "indoor_flying3"):
        write_mvsec_layout(tmp_path / f"{seq}_data.hdf5", n_frames=1817, attrs=False)
        (tmp_path / f"{seq}_gt.hdf5").symlink_to(tmp_path / f"{seq}_data.hdf5")
    sizes = {s: len(open_split(tmp_path, s)) for s in ("train", "val", "test")}
    assert sizes == {"train": (1581 - 159) + (1816 - 124), "val": 200, "test": (1201 - 139) - 200}
    (tmp_path / "indoor_flying3_gt.hdf5").unlink()
    with pytest.raises(FileNotFoundError, match="indoor_flying3_gt.hdf5"):
        open_split(tmp_path, "train")
