"""Embedded data sets: the digits event set and the stereo depth set (generated into a temporary cache)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from spikes.datasets import MVSECStereo, digits_events, digits_frames, stereo_depth_file
from spikes.datasets import digits as digits_mod
from spikes.datasets import stereo_synth


@pytest.fixture(scope="module")
def digits_cache(tmp_path_factory):
    d = tmp_path_factory.mktemp("digits_cache")
    digits_events("train", seed=0, cache_dir=d)  # generates once
    return d


@pytest.mark.slow
def test_digits_events_content(digits_cache):
    from sklearn.datasets import load_digits

    train, test = digits_events("train", cache_dir=digits_cache), digits_events("test", cache_dir=digits_cache)
    assert (len(train), len(test)) == (1438, 359) and train.sensor_size == (34, 34, 2)
    target = load_digits().target
    assert train.targets.tolist() == [int(v) for i, v in enumerate(target) if i % 5 != 4]
    ev, label = test[0]
    assert label == target[4] and ev.dtype.names == ("x", "y", "t", "p")
    assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].min() >= 0 and ev["t"].max() < 300_000
    assert ev["x"].max() < 34 and ev["y"].max() < 34
    n = np.array([len(train[i][0]) for i in range(0, 1438, 10)])
    assert 1000 < n.mean() < 8000
    # background activity: row 0 and column 0 never see the digit (offsets >= 1): only noise events,
    # expected 0.2 Hz * 67 pixels * 0.3 s per sample
    d = digits_mod._load(0, digits_cache)
    border = int(((d["x"] == 0) | (d["y"] == 0)).sum())
    expect = 0.2 * 67 * 0.3 * 1797
    assert abs(border - expect) < 5 * np.sqrt(expect)
    # the events carry the digit: a nearest-centroid classifier on event-count images
    from sklearn.neighbors import NearestCentroid

    def counts(ds):
        return np.stack([np.bincount(e["p"].astype(int) * 1156 + e["y"] * 34 + e["x"], minlength=2312)
                         for e, _ in (ds[i] for i in range(len(ds)))])

    clf = NearestCentroid().fit(counts(train), train.targets)
    assert clf.score(counts(test), test.targets) > 0.8


@pytest.mark.slow
def test_digits_frames_match_events_and_cache(digits_cache, monkeypatch):
    # the second call must come from the cache, never regenerate
    monkeypatch.setattr(digits_mod, "generate_digits_events", lambda *a, **k: pytest.fail("regenerated"))
    x, y = digits_frames("test", n_time_bins=10, cache_dir=digits_cache)
    ds = digits_events("test", cache_dir=digits_cache)
    assert x.shape == (359, 10, 2, 34, 34) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert set(torch.unique(x).tolist()) == {0.0, 1.0}
    for i in (0, 17, 358):
        ev, label = ds[i]
        h, _ = np.histogramdd(np.stack([ev["t"], ev["p"], ev["y"], ev["x"]], 1),
                              bins=(np.linspace(0, 300_000, 11), [0, 1, 2], np.arange(35), np.arange(35)))
        assert np.array_equal(x[i].numpy(), np.minimum(h, 1)) and y[i] == label


def test_digits_deterministic_small():
    from spikes.datasets.sensor import DVSParameters, simulate_dvs

    def run(seed):
        frames = np.random.default_rng(1).uniform(0, 1, (20, 3, 5, 6)).astype(np.float32)
        return simulate_dvs(lambda k: frames[k], 20, (3, 5, 6), DVSParameters(), np.random.default_rng(seed))

    a, b, c = run(0), run(0), run(1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert any(len(u) != len(v) or not np.array_equal(u, v) for u, v in zip(a, c))


def test_dvs_model_hand_computed():
    from spikes.datasets.sensor import DVSParameters, simulate_dvs

    # one pixel, no mismatch, threshold 0.4, log intensity 0 -> 1.0 -> 0.3:
    # step 1: d = 1.0 = 2.5 thresholds -> one ON event (refractory), reference moves 2 thresholds to 0.8;
    # step 2: d = 0.3 - 0.8 = -0.5 -> one OFF event, reference 0.4
    p = DVSParameters(threshold=0.4, threshold_sigma=0.0, eps=0.1, dt_us=1000, noise_hz=0.0)
    logs = np.array([0.0, 1.0, 0.3])
    frames = (np.exp(logs) - 0.1).astype(np.float32)[:, None, None, None]
    b, x, y, t, pol = simulate_dvs(lambda k: frames[k], 3, (1, 1, 1), p, np.random.default_rng(0))
    assert pol.tolist() == [1, 0]
    assert (0 <= t[0] < 1000) and (1000 <= t[1] < 2000)


@pytest.fixture(scope="module")
def stereo_file(tmp_path_factory):
    return stereo_depth_file(seed=0, cache_dir=tmp_path_factory.mktemp("stereo_cache"))


@pytest.mark.slow
def test_stereo_file_layout_and_geometry(stereo_file):
    with h5py.File(stereo_file, "r") as f:
        for cam in ("left", "right"):
            ev = f[f"davis/{cam}/events"][:]
            assert ev.shape[1] == 4 and np.all(np.diff(ev[:, 2]) >= 0) and set(np.unique(ev[:, 3])) == {-1.0, 1.0}
        depth = f["davis/left/depth_image_rect"][:]
        ts = f["davis/left/depth_image_rect_ts"][:]
        left, right = f["davis/left/events"][:], f["davis/right/events"][:]
    K, H, W = depth.shape
    assert (H, W) == (64, 96) and K == stereo_synth.N_FRAMES and np.allclose(np.diff(ts), 0.05)
    assert depth.min() >= 1.0 - 1e-5 and np.isclose(depth.max(), stereo_synth.Z_BG)
    assert 0.05 < (depth < stereo_synth.Z_BG).mean() < 0.6  # the discs cover part of the view

    # stereo geometry: on near-disc pixels the right view equals the left one shifted by d = f B / Z
    fb = stereo_synth.F_PX * stereo_synth.BASELINE_M
    scores = np.zeros(12)
    for k in range(20, K, 10):
        win = lambda e: e[(e[:, 2] >= ts[k] - 0.05) & (e[:, 2] < ts[k])]
        img = [np.histogram2d(e[:, 1], e[:, 0], bins=(np.arange(H + 1), np.arange(W + 1)))[0] for e in (win(left), win(right))]
        near = (depth[k] < 1.6)
        if near.sum() < 30:
            continue
        for s in range(12):  # right[y, x - s] vs left[y, x]
            shifted = np.zeros_like(img[1])
            shifted[:, s:] = img[1][:, : W - s]
            scores[s] += (img[0] * shifted)[near].sum()
    d_near = fb / np.mean(depth[depth < 1.6])
    assert abs(int(np.argmax(scores)) - d_near) <= 1.0


@pytest.mark.slow
def test_mvsec_loader_on_stereo_file(stereo_file):
    sets = {s: MVSECStereo(stereo_file, s) for s in ("train", "val", "test")}
    assert sum(len(s) for s in sets.values()) == stereo_synth.N_FRAMES - 1
    assert set(sets["train"].frames) & set(sets["test"].frames) == set()
    x, depth = sets["val"][3]
    assert x.shape == (4, 64, 96) and x.dtype == torch.float32 and depth.shape == (64, 96)
    k = sets["val"].frames[3]
    with h5py.File(stereo_file, "r") as f:
        t = f["davis/left/depth_image_rect_ts"][k]
        for c, cam in enumerate(("left", "right")):
            e = f[f"davis/{cam}/events"][:]
            e = e[(e[:, 2] >= t - 0.05) & (e[:, 2] < t)]
            for q, pol in enumerate((1.0, -1.0)):
                sel = e[e[:, 3] == pol]
                h = np.histogram2d(sel[:, 1], sel[:, 0], bins=(np.arange(65), np.arange(97)))[0]
                assert np.array_equal(x[2 * c + q].numpy(), h)
        assert np.array_equal(depth.numpy(), f["davis/left/depth_image_rect"][k])
