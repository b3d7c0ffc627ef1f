"""DSEC loader on a tiny fake sequence in the authors' layout."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

from spikes.datasets.dsec import DSECStereo


def _fake_sequence(root, H=4, W=5, n=3000, t_offset=1_000_000):
    seq = root / "zurich_city_00_a"
    rng = np.random.default_rng(0)
    streams = {}
    for cam in ("left", "right"):
        d = seq / "events" / cam
        d.mkdir(parents=True)
        t = np.sort(rng.integers(0, 300_000, n))
        x, y, p = rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n)
        ms_to_idx = np.searchsorted(t, np.arange(0, 301) * 1000, side="left")
        with h5py.File(d / "events.h5", "w") as f:
            f["events/x"], f["events/y"], f["events/t"], f["events/p"] = x.astype(np.uint16), y.astype(np.uint16), t.astype(np.uint32), p.astype(np.uint8)
            f["ms_to_idx"], f["t_offset"] = ms_to_idx.astype(np.uint64), np.int64(t_offset)
        streams[cam] = (x, y, t, p)
    rect = np.stack(np.meshgrid(np.arange(W) + 1.0, np.arange(H, dtype=float)), -1)  # left: one pixel right
    with h5py.File(seq / "events" / "left" / "rectify_map.h5", "w") as f:
        f["rectify_map"] = rect
    dd = seq / "disparity" / "event"
    dd.mkdir(parents=True)
    ts = t_offset + np.array([100_000, 200_000, 250_000])
    np.savetxt(seq / "disparity" / "timestamps.txt", ts, fmt="%d")
    disp = rng.integers(1, 60 * 256, (3, H, W)).astype(np.uint16)
    disp[:, 0, 0] = 0
    for k in range(3):
        Image.fromarray(disp[k]).save(dd / f"{k:06d}.png")
    return streams, ts - t_offset, disp


def test_dsec_fake_sequence(tmp_path):
    streams, rel, disp = _fake_sequence(tmp_path)
    ds = DSECStereo(tmp_path, "zurich_city_00_a")
    assert len(ds) == 3
    x, d = ds[1]
    assert x.shape == (4, 4, 5) and d.shape == (4, 5)
    assert np.isnan(d[0, 0]) and np.allclose(d.numpy().flatten()[1:], disp[1].flatten()[1:] / 256.0)
    for c, cam in enumerate(("left", "right")):
        ex, ey, et, ep = streams[cam]
        sel = (et >= rel[1] - 50_000) & (et < rel[1])
        if cam == "left":
            ex = ex + 1  # the rectify map shifts one pixel right; column 5 falls off
        for q, pol in enumerate((1, 0)):
            m = sel & (ep == pol) & (ex < 5)
            ref = np.zeros((4, 5))
            np.add.at(ref, (ey[m], ex[m]), 1)
            assert np.array_equal(x[2 * c + q].numpy(), ref)


def test_dsec_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere/disparity/timestamps.txt.*dsec"):
        DSECStereo(tmp_path, "nowhere")
