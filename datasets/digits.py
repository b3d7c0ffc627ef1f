"""Embedded event classification set: scikit-learn's handwritten digits seen by a simulated DVS.

Source: ``sklearn.datasets.load_digits`` (1797 real 8x8 handwritten digits, 10 classes, shipped with
scikit-learn, no download). Each image is upsampled bilinearly to 28x28 (intensity = pixel / 16) and
moved on a 34x34 sensor along N-MNIST's three saccades: offsets (1,1) -> (3,5) -> (5,1) -> (1,1),
100 ms each, constant speed, 300 ms per sample. Events come from :func:`spikes.datasets.sensor.simulate_dvs`
with :class:`~spikes.datasets.sensor.DVSParameters` defaults (threshold 0.4 +- 0.05 log units per pixel,
0.2 Hz background activity) and a 2 ms time step = refractory period. One sensor (threshold mismatch)
is drawn per seed and shared by all samples, like one camera recording the whole set.

Split (fixed, independent of the seed): test = images whose index % 5 == 4 (359), train = the rest (1438).
Generated on first use and cached as ``digits_events_v{_VERSION}_seed{seed}.npz`` in the cache directory.
scikit-learn (heavy) is imported only when the set is generated.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import zoom

from .cache import atomic_write, cache_dir as _cache_dir
from .events import make_events
from .sensor import DVSParameters, simulate_dvs

SENSOR_SIZE = (34, 34, 2)
DURATION_US = 300_000
DT_US = 2000  # simulation step = refractory period
DIGIT_SIZE = 28
SACCADES = np.array([(1.0, 1.0), (3.0, 5.0), (5.0, 1.0), (1.0, 1.0)])  # (x, y) offsets of the digit
_VERSION = 2  # bump whenever the generated content changes (stale caches are then ignored)


def _split_mask(n: int, split: str) -> np.ndarray:
    if split not in ("train", "test", "all"):
        raise ValueError(f"split={split!r}: expected 'train', 'test' or 'all'")
    test = np.arange(n) % 5 == 4
    return np.ones(n, bool) if split == "all" else test if split == "test" else ~test


def _offset(k: int, n_steps: int) -> tuple[float, float]:
    s = 3.0 * k / n_steps
    i = min(int(s), 2)
    f = s - i
    x, y = SACCADES[i] * (1 - f) + SACCADES[i + 1] * f
    return float(x), float(y)


def generate_digits_events(seed: int = 0, params: DVSParameters = DVSParameters()) -> dict[str, np.ndarray]:
    """Simulate the whole set (both splits). Returns flat event columns with per-sample ``offsets``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    imgs = np.clip(zoom(digits.images / 16.0, (1, DIGIT_SIZE / 8, DIGIT_SIZE / 8), order=1), 0, 1).astype(np.float32)
    B = len(imgs)
    W, H = SENSOR_SIZE[:2]
    n_steps = DURATION_US // DT_US
    canvas = torch.zeros((B, H + 1, W + 1))
    timgs = torch.from_numpy(imgs)

    def render(k: int) -> torch.Tensor:
        ox, oy = _offset(k, n_steps)
        ix, iy = int(ox), int(oy)
        fx, fy = ox - ix, oy - iy
        canvas.zero_()
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            if w:
                canvas[:, iy + dy : iy + dy + DIGIT_SIZE, ix + dx : ix + dx + DIGIT_SIZE].add_(timgs, alpha=w)
        return canvas[:, :H, :W]

    rng = np.random.default_rng(seed)
    params = replace(params, dt_us=DT_US)
    b, x, y, t, p = simulate_dvs(render, n_steps, (B, H, W), params, rng, desc="digits events")
    offsets = np.searchsorted(b, np.arange(B + 1))
    return {
        "x": x.astype(np.uint8), "y": y.astype(np.uint8), "t": t.astype(np.int32), "p": p.astype(np.uint8),
        "offsets": offsets.astype(np.int64), "labels": digits.target.astype(np.int64),
    }


def digits_events_file(seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Path of the cached event set for ``seed``, generating it (about 10-30 s) on first use."""
    path = _cache_dir(cache_dir) / f"digits_events_v{_VERSION}_seed{seed}.npz"
    if not path.exists():
        data = generate_digits_events(seed)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **data)

        atomic_write(path, write)
    return path


def _load(seed: int, cache_dir) -> dict[str, np.ndarray]:
    with np.load(digits_events_file(seed, cache_dir)) as z:
        return {k: z[k] for k in z.files}


class DigitsEvents(torch.utils.data.Dataset):
    """(events, label) pairs; events are an EVENT_DTYPE structured array (x, y, t us, p 0/1)."""

    sensor_size = SENSOR_SIZE
    classes = list(range(10))

    def __init__(self, split: str = "train", seed: int = 0, cache_dir: str | Path | None = None, transform=None):
        data = _load(seed, cache_dir)
        self._data = data
        self.indices = np.flatnonzero(_split_mask(len(data["labels"]), split))
        self.targets = data["labels"][self.indices]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        j = self.indices[i]
        a, b = self._data["offsets"][j], self._data["offsets"][j + 1]
        d = self._data
        ev = make_events(d["x"][a:b], d["y"][a:b], d["t"][a:b].astype(np.int64), d["p"][a:b])
        if self.transform is not None:
            ev = self.transform(ev)
        return ev, int(self.targets[i])


def digits_events(split: str = "train", seed: int = 0, cache_dir: str | Path | None = None, transform=None) -> DigitsEvents:
    """Torch Dataset of (events, label) from the embedded digits set (see module docstring)."""
    return DigitsEvents(split, seed, cache_dir, transform)


def digits_frames(split: str = "train", n_time_bins: int = 20, seed: int = 0,
                  cache_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fast path: ``x`` float32 (N, T, 2, H, W), ``y`` int64 (N,).

    Bin k covers t in [k, k+1) * 300 ms / T; x[n, k, p, y, x] = 1 if the sample has at least one event of
    polarity p (channel 0 = OFF, 1 = ON) at that pixel in that bin, else 0 (counts clipped to 1 = spikes).
    """
    if n_time_bins < 1:
        raise ValueError(f"n_time_bins={n_time_bins}: must be >= 1")
    d = _load(seed, cache_dir)
    idx = np.flatnonzero(_split_mask(len(d["labels"]), split))
    W, H, C = SENSOR_SIZE
    counts = np.diff(d["offsets"])[idx]
    rows = np.concatenate([np.arange(d["offsets"][j], d["offsets"][j + 1]) for j in idx])
    n = np.repeat(np.arange(len(idx)), counts)
    tb = np.minimum(d["t"][rows].astype(np.int64) * n_time_bins // DURATION_US, n_time_bins - 1)
    flat = (((n * n_time_bins + tb) * C + d["p"][rows]) * H + d["y"][rows]) * W + d["x"][rows]
    x = torch.zeros(len(idx) * n_time_bins * C * H * W, dtype=torch.float32)
    x[torch.from_numpy(flat)] = 1.0
    return x.view(len(idx), n_time_bins, C, H, W), torch.from_numpy(d["labels"][idx].copy())
