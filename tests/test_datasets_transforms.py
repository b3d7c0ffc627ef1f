"""Transforms, collation, disk caching, tonic data sets on fake trees, MVSEC loader on a fake tree."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from spikes.datasets import MVSECStereo, make_events
from spikes.datasets.mvsec import SPLIT1, _bisect_rows, split1_frames
from spikes.datasets.tonic_sets import DVSGesture, NCALTECH101, NMNIST, POKERDVS
from spikes.datasets.transforms import (
    CenterCrop, Crop, Denoise, DiskCachedDataset, Downsample, SliceByTime, TimeBins, ToFrame, ToVoxelGrid, collate_time_major, to_time_bins,
)


def _random_events(n=500, W=16, H=12, T=100_000, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, W, n), rng.integers(0, H, n), np.sort(rng.integers(0, T, n)), rng.integers(0, 2, n))


def test_time_bins_against_histogram():
    ev = _random_events()
    out = TimeBins((16, 12, 2), 5, duration_us=100_000, t0=0)(ev)
    h, _ = np.histogramdd(np.stack([ev["t"], ev["p"], ev["y"], ev["x"]], 1),
                          bins=(np.linspace(0, 100_000, 6), [0, 1, 2], np.arange(13), np.arange(17)))
    assert out.shape == (5, 2, 12, 16) and np.array_equal(out, h)
    assert to_time_bins(ev, (16, 12, 2), 5, 100_000, 0, clip=1).max() == 1
    # tonic's ToFrame spans the sample's own range [t_first, t_last), so it leaves out the last event
    assert ToFrame(sensor_size=(16, 12, 2), n_time_bins=5)(ev).sum() == len(ev) - 1


def test_crop_slice_denoise_voxel():
    ev = _random_events()
    c = Crop(4, 2, 8, 6)(ev)
    inside = (ev["x"] >= 4) & (ev["x"] < 12) & (ev["y"] >= 2) & (ev["y"] < 8)
    assert len(c) == inside.sum() and c["x"].max() < 8 and c["y"].max() < 6
    assert np.array_equal(c["x"], ev["x"][inside] - 4)
    parts = SliceByTime(10_000)(ev)
    assert sum(len(p) for p in parts) == len(ev)
    assert all(np.all((p["t"] - ev["t"][0]) // 10_000 == i) for i, p in enumerate(parts) if len(p))
    assert len(SliceByTime(20_000, 10_000)(ev)) == len(parts)
    # tonic's Denoise keeps an event only if a 4-neighbour fired within 500 us before it
    pair = make_events([5, 5, 6, 0], [5, 5, 5, 11], [5000, 6000, 6100, 50_000], [1, 1, 1, 0])
    kept = Denoise(filter_time=500)(pair)
    assert kept["x"].tolist() == [6] and kept["t"].tolist() == [6100]
    assert ToVoxelGrid(sensor_size=(16, 12, 2), n_time_bins=4)(ev).shape == (4, 1, 12, 16)
    half = Downsample(spatial_factor=0.5)(ev)
    assert np.array_equal(half["x"], ev["x"] // 2) and np.array_equal(half["t"], ev["t"])
    cc = CenterCrop(sensor_size=(16, 12, 2), size=(8, 6))(ev)  # the centred window x 4..11, y 3..8
    assert np.array_equal(cc, Crop(4, 3, 8, 6)(ev))


def test_collate_time_major():
    batch = [(np.ones((3, 2, 4, 5), np.float32), 1), (2 * np.ones((5, 2, 4, 5), np.float32), 0)]
    x, y = collate_time_major(batch)
    assert x.shape == (5, 2, 2, 4, 5) and y.tolist() == [1, 0]
    assert x[:3, 0].eq(1).all() and x[3:, 0].eq(0).all() and x[:, 1].eq(2).all()


def test_disk_cache(tmp_path):
    calls = []

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            calls.append(i)
            return _random_events(seed=i), i

    tb = TimeBins((16, 12, 2), 4, 100_000, 0)
    cached = DiskCachedDataset(DS(), tmp_path / "c", transform=tb)
    a = cached[1]
    b = DiskCachedDataset(DS(), tmp_path / "c", transform=tb)[1]
    assert calls == [1] and np.array_equal(a[0], b[0]) and b[1] == 1
    assert np.array_equal(b[0], tb(_random_events(seed=1)))
    assert not list((tmp_path / "c").glob("*.tmp"))


# --- tonic data sets on tiny fake trees ---------------------------------------------------------------

def _atis_bytes(x, y, t, p) -> bytes:
    t = np.asarray(t)
    raw = np.stack([x, y, (np.asarray(p) << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], 1).astype(np.uint8)
    return raw.tobytes()


def test_nmnist_fake_tree_and_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"NMNIST/Train.*get the data from"):
        NMNIST(tmp_path)
    for digit in (3, 7):
        d = tmp_path / "NMNIST" / "Train" / str(digit)
        d.mkdir(parents=True)
        (d / "00001.bin").write_bytes(_atis_bytes([1, 2, 33], [4, 5, 6], [10, 20, 70000], [1, 0, 1]))
    ds = NMNIST(tmp_path, train=True)
    assert len(ds) == 2 and ds.targets == [3, 7]
    ev, label = ds[1]
    assert label == 7 and ev.dtype.names == ("x", "y", "t", "p")
    assert ev.tolist() == [(1, 4, 10, 1), (2, 5, 20, 0), (33, 6, 70000, 1)]
    with pytest.raises(FileNotFoundError, match=r"NMNIST/Test"):
        NMNIST(tmp_path, train=False)


def test_pokerdvs_dvsgesture_ncaltech_fake_trees(tmp_path):
    for cls in ("cl", "sp"):
        d = tmp_path / "POKERDVS" / "pips_train" / cls
        d.mkdir(parents=True)
        np.save(d / "0.npy", np.array([[5, 1, 2, 1], [9, 3, 4, 0]]))  # t, x, y, p
    ds = POKERDVS(tmp_path)
    assert ds.targets == [0, 3] and ds[0][0].tolist() == [(1, 2, 5, 1), (3, 4, 9, 0)]

    d = tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_led"
    d.mkdir(parents=True)
    np.save(d / "4.npy", np.array([[10, 20, 1, 1.5], [11, 21, 0, 2.0]]))  # x, y, p, t (ms)
    ds = DVSGesture(tmp_path, train=False, transform=lambda e: e[e["p"] == 1])
    ev, label = ds[0]
    assert label == 4 and ev.tolist() == [(10, 20, 1500, 1)]

    d = tmp_path / "NCALTECH101" / "Caltech101" / "airplanes"
    d.mkdir(parents=True)
    (d / "image_0001.bin").write_bytes(_atis_bytes([50, 60], [7, 9], [1, 2], [0, 1]))
    ds = NCALTECH101(tmp_path)
    ev, label = ds[0]
    assert label == "airplanes" and ev.tolist() == [(0, 0, 1, 0), (10, 2, 2, 1)]  # tonic re-bases x, y


# --- MVSEC loader on a fake tree in the authors' layout ------------------------------------------------

def _fake_mvsec(path, K=1300, H=3, W=4):
    ts = 100.0 + 0.05 * np.arange(K)
    rng = np.random.default_rng(0)
    n = 20_000
    t = np.sort(rng.uniform(ts[0] - 0.1, ts[-1], n))
    kb = min(200, K - 1)
    t[:3] = [ts[kb] - 0.05, ts[kb] - 1e-4, ts[kb]]  # events on frame 200's window edges (then re-sorted)
    t = np.sort(t)
    left = np.stack([rng.integers(0, W, n), rng.integers(0, H, n), t, rng.choice([-1.0, 1.0], n)], 1)
    right = left.copy()
    right[:, 0] = np.maximum(left[:, 0] - 1, 0)
    depth = rng.uniform(1, 5, (K, H, W)).astype(np.float32)
    depth[:, 0, 0] = np.nan
    depth[:, 0, 1] = 0.0
    with h5py.File(path, "w") as f:
        f["davis/left/events"], f["davis/right/events"] = left, right
        f["davis/left/depth_image_rect"], f["davis/left/depth_image_rect_ts"] = depth, ts
    return left, right, depth, ts


def test_mvsec_fake_tree(tmp_path):
    path = tmp_path / "indoor_flying1_data.hdf5"
    left, right, depth, ts = _fake_mvsec(path)
    ds = MVSECStereo(path, "train", frames=[200, 1000])
    x, d = ds[0]
    assert x.shape == (4, 3, 4) and d.shape == (3, 4)
    for c, ev in enumerate((left, right)):
        win = ev[(ev[:, 2] >= ts[200] - 0.05) & (ev[:, 2] < ts[200])]
        for q, on in enumerate((True, False)):
            sel = win[(win[:, 3] > 0) == on]
            assert np.array_equal(x[2 * c + q].numpy(), np.histogram2d(sel[:, 1], sel[:, 0], bins=(np.arange(4), np.arange(5)))[0])
    assert torch.isnan(d[0, 0]) and torch.isnan(d[0, 1]) and torch.isfinite(d.flatten()[2:]).all()
    assert np.allclose(d.numpy().flatten()[2:], depth[200].flatten()[2:])
    # StereoSpike split 1 on indoor_flying1: val + test = frames [139, 1201), disjoint, 200 val frames
    val = MVSECStereo(path, "val", sequence="indoor_flying1")
    test = MVSECStereo(path, "test", sequence="indoor_flying1")
    assert len(val) == 200 and len(test) == 1201 - 139 - 200
    assert sorted([*val.frames, *test.frames]) == list(range(139, 1201))
    assert len(split1_frames("indoor_flying2", "train")) == 1581 - 159 and SPLIT1["indoor_flying3"]["train"] == (124, 1816)
    # rectification maps: shift every left event one pixel right (the last column falls off)
    rect = np.stack(np.meshgrid(np.arange(4) + 1.0, np.arange(3.0)), -1)
    xr, _ = MVSECStereo(path, "train", frames=[200], rect_maps={"left": rect})[0]
    assert np.array_equal(xr[0, :, 1:].numpy(), x[0, :, :3].numpy()) and xr[0, :, 0].sum() == 0


def test_mvsec_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere.hdf5.*MVSEC"):
        MVSECStereo(tmp_path / "nothere.hdf5")
    path = tmp_path / "seq.hdf5"
    _fake_mvsec(path, K=50)
    with pytest.raises(ValueError, match=r"seq.hdf5: no split attributes"):
        MVSECStereo(path, "train")
    with pytest.raises(IndexError, match=r"seq.hdf5: frames 10..60 outside the file's 50"):
        MVSECStereo(path, "train", frames=[10, 60])
    bad = tmp_path / "bad.hdf5"
    with h5py.File(bad, "w") as f:
        f["davis/left/depth_image_rect"], f["davis/left/depth_image_rect_ts"] = np.zeros((2, 3, 4)), np.arange(2.0)
        f["davis/left/events"], f["davis/right/events"] = np.zeros((5, 3)), np.zeros((5, 4))
    with pytest.raises(ValueError, match=r"bad.hdf5: 'davis/left/events' has shape \(5, 3\)"):
        MVSECStereo(bad, "train", frames=[1])


def test_bisect_rows_coarse_path(tmp_path):
    t = np.sort(np.random.default_rng(0).uniform(0, 10, 5000))
    with h5py.File(tmp_path / "e.hdf5", "w") as f:
        f["ev"] = np.stack([t, t, t, t], 1)
        q = np.array([-1.0, 0.0, t[17], 3.3, t[4000], 11.0])
        assert np.array_equal(_bisect_rows(f["ev"], q, block=64), np.searchsorted(t, q, side="left"))
