"""StereoSpike training, evaluation, checkpoints and the 'spikes stereo' CLI on a tiny fake stereo set."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikes.models.stereospike.train import (StereoConfig, StereoData, evaluate, load_checkpoint,
                                             mean_depth_baseline, save_checkpoint, train)


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


def small_cfg(**kw) -> StereoConfig:
    return StereoConfig(**{"base": 2, "levels": 2, "n_res": 1, "epochs": 3, "batch_size": 4, "lr": 3e-3, **kw})


def test_training_is_seeded_lowers_loss_and_checkpoints_round_trip(tmp_path):
    tr, te = StereoData(FakeStereo(split="train")), StereoData(FakeStereo(split="test"))
    assert tr.mean_depth() == pytest.approx(float(np.nanmean(np.stack([d for _, d in FakeStereo().items]))))
    m1, h1 = train(small_cfg(), tr, te, checkpoint=tmp_path / "a.pt", progress=False)
    m2, h2 = train(small_cfg(), tr, progress=False)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert h1["loss"] == h2["loss"] and h1["loss"][-1] < h1["loss"][0]
    assert len(h1["val_mde"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]  # no temp file left behind
    m3, cfg, extra = load_checkpoint(tmp_path / "a.pt")
    assert cfg.input_size == (16, 24) and extra["epoch"] == 3
    r1, r3 = evaluate(m1, te, fb=8.0), evaluate(m3, te, fb=8.0)
    assert r1["mde"] == pytest.approx(r3["mde"])
    assert set(r1["firing_rates"]) == set(m1.unit_names)
    assert all(0.0 <= v <= 1.0 for v in r1["firing_rates"].values())
    assert r1["mean_firing_rate"] == pytest.approx(np.mean(list(r1["firing_rates"].values())))
    assert 0.0 <= r1["one_pixel_accuracy"] <= 1.0
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="init_from=.*a.pt.*does not fit"):
        train(small_cfg(base=3, init_from=str(tmp_path / "a.pt")), tr, progress=False)


def test_mean_depth_baseline_by_hand():
    tr, te = StereoData(FakeStereo(split="train")), StereoData(FakeStereo(split="test"))
    mean = np.nanmean(np.stack([d for _, d in FakeStereo(split="train").items]).astype(float))
    gt = np.stack([d for _, d in FakeStereo(split="test").items]).astype(float)
    assert mean_depth_baseline(tr, te) == pytest.approx(np.nanmean(np.abs(gt - mean)), rel=1e-5)


def test_spike_penalty_lowers_firing(tmp_path):
    tr = StereoData(FakeStereo(split="train"))
    rates = []
    for beta in (0.0, 5.0):
        m, _ = train(small_cfg(beta=beta, epochs=4), tr, progress=False)
        rates.append(evaluate(m, tr)["mean_firing_rate"])
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
    """End to end through spikes.datasets.MVSECStereo on a tiny MVSEC-layout file."""
    from spikes.cli import main
    from spikes.models.stereospike.data import open_split

    data = str(write_mvsec_layout(tmp_path / "fake.hdf5"))
    test = open_split(data, "test")
    assert len(test) == 6 and test.input_size == (16, 24)
    want = FakeStereo(split="test").items
    assert torch.equal(test.x, torch.from_numpy(np.stack([x for x, _ in want])))
    assert torch.equal(test.depth.isnan(), torch.from_numpy(np.isnan(np.stack([d for _, d in want]))))
    common = ["--data", data, "--base", "2", "--levels", "2", "--n-res", "1", "--epochs", "2", "--no-progress"]
    assert main(["stereo", "train", *common, "--run-dir", str(tmp_path / "t")]) == 0
    assert "test MDE" in capsys.readouterr().out
    assert main(["stereo", "eval", str(tmp_path / "t" / "checkpoint.pt"), "--data", data,
                 "--json", str(tmp_path / "e.json")]) == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["fb"] == 8.0 and ev["split"] == "test"
    saved = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert ev["mde"] == pytest.approx(saved["test"]["mde"])
    rd = tmp_path / "r"
    assert main(["stereo", "report", *common, "--betas", "0", "2", "--finetune-epochs", "1", "--run-dir", str(rd)]) == 0
    report = json.loads((rd / "report.json").read_text())
    assert [r["run"] for r in report["rows"]] == ["snn_beta0", "snn_beta2", "snn_beta2_ft", "ann_sigmoid"]
    ft = json.loads((rd / "snn_beta2_ft" / "metrics.json").read_text())
    assert ft["config"]["init_from"].endswith("snn_beta0/checkpoint.pt") and len(ft["history"]["loss"]) == 1
    assert (rd / "report.png").read_bytes()[:4] == b"\x89PNG" and "| snn_beta2 |" in (rd / "report.md").read_text()
    assert "snn_mde_at_least_50pct_below_baseline" in report["checks"]
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        main(["stereo", "train", *common, "--data", str(tmp_path / "missing.h5"), "--run-dir", str(tmp_path / "x")])


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
