"""Cache directory resolution, atomic writes, determinism of the stereo generator."""
from __future__ import annotations

import numpy as np
import pytest

from spikes.datasets import stereo_synth
from spikes.datasets.cache import cache_dir
from spikes.io import atomic_write


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKES_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env" and (tmp_path / "env").is_dir()
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("SPIKES_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "spikes"


def test_atomic_write(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write(target, lambda p: p.write_bytes(b"one"))
    with pytest.raises(RuntimeError):
        def fail(p):
            p.write_bytes(b"half")
            raise RuntimeError("disk full")
        atomic_write(target, fail)
    assert target.read_bytes() == b"one" and [f.name for f in tmp_path.iterdir()] == ["a.bin"]


def test_stereo_generator_deterministic_and_geometric():
    a = stereo_synth.generate_stereo_depth(seed=3, n_frames=2)
    b = stereo_synth.generate_stereo_depth(seed=3, n_frames=2)
    c = stereo_synth.generate_stereo_depth(seed=4, n_frames=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["davis/left/depth_image_rect"], c["davis/left/depth_image_rect"])
    # right view of a disc: its left-view pixels shifted by d = f B / Z (rendered depth, no events)
    scene = stereo_synth._Scene(np.random.default_rng(0))
    t = np.array([1.0])
    _, dl = scene.render(t, 0)
    _, dr = scene.render(t, 1)
    cx, cy, z = scene.objects(t)
    i = int(np.argmin(z[0]))
    d = stereo_synth.F_PX * stereo_synth.BASELINE_M / z[0, i]
    y = int(round(cy[0, i]))
    cols_l = np.flatnonzero(np.isclose(dl[0, y].numpy(), z[0, i]))
    cols_r = np.flatnonzero(np.isclose(dr[0, y].numpy(), z[0, i]))
    assert len(cols_l) > 3 and abs(cols_l.mean() - cols_r.mean() - d) < 1.0
