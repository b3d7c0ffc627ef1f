"""Event transforms (tonic style: small dataclasses over pure functions) and collation.

From tonic, re-exported because they work on our EVENT_DTYPE arrays: ``ToFrame``, ``ToVoxelGrid``,
``Denoise``, ``CenterCrop``, ``RandomCrop``, ``Downsample``, ``CropTime``, ``RefractoryPeriod``, ``Compose``.
Ours, where tonic has no equivalent:

- :class:`TimeBins`: counts in T bins of a *fixed* window [t0, t0 + duration) (tonic's ToFrame bins each
  sample over its own time range, so bins of different samples would not align):
  out[k, p, y, x] = #{events: floor((t - t0) * T / duration) = k, polarity p}, optionally clipped.
- :class:`Crop`: a fixed window x in [x0, x0 + W), y in [y0, y0 + H), coordinates shifted to the window.
- :class:`SliceByTime`: windows [t0 + i * stride, t0 + i * stride + window) as a list of event arrays.
- :func:`collate_time_major`: batch of ((T_i, C, H, W) tensors, label) -> ((T, B, C, H, W), labels),
  zero-padded to the longest T (tonic's ``PadTensors(batch_first=False)``).
- :class:`DiskCachedDataset`: caches each transformed sample as an .npz file (atomic writes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tonic.collation import PadTensors
from tonic.transforms import (  # noqa: F401  (re-exported)
    CenterCrop, Compose, CropTime, Denoise, Downsample, RandomCrop, RefractoryPeriod, ToFrame, ToVoxelGrid,
)

from .cache import atomic_write


def to_time_bins(events: np.ndarray, sensor_size: tuple[int, int, int], n_time_bins: int,
                 duration_us: int | None = None, t0: int | None = None, clip: float | None = None) -> np.ndarray:
    """(T, 2, H, W) float32 event counts; events outside [t0, t0 + duration) are ignored.

    ``t0`` defaults to the first event's time and ``duration_us`` to the span of the events (+1 us).
    """
    if n_time_bins < 1:
        raise ValueError(f"n_time_bins={n_time_bins}: must be >= 1")
    W, H = int(sensor_size[0]), int(sensor_size[1])
    out = np.zeros((n_time_bins, 2, H, W), np.float32)
    if len(events) == 0:
        return out
    t = events["t"].astype(np.int64)
    t0 = int(t[0]) if t0 is None else int(t0)
    duration_us = int(t[-1] - t0 + 1) if duration_us is None else int(duration_us)
    if duration_us <= 0:
        raise ValueError(f"duration_us={duration_us}: must be > 0")
    rel = t - t0
    keep = (rel >= 0) & (rel < duration_us)
    k = rel[keep] * n_time_bins // duration_us
    p = (events["p"][keep] > 0).astype(np.int64)
    np.add.at(out, (k, p, events["y"][keep].astype(np.int64), events["x"][keep].astype(np.int64)), 1.0)
    return np.minimum(out, clip) if clip is not None else out


@dataclass(frozen=True)
class TimeBins:
    """Fixed-window time bins, see :func:`to_time_bins`. ``clip=1`` turns counts into spikes."""

    sensor_size: tuple[int, int, int]
    n_time_bins: int
    duration_us: int | None = None
    t0: int | None = None
    clip: float | None = None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return to_time_bins(events, self.sensor_size, self.n_time_bins, self.duration_us, self.t0, self.clip)


def crop(events: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """Events inside the window, with x -= x0, y -= y0."""
    keep = (events["x"] >= x0) & (events["x"] < x0 + width) & (events["y"] >= y0) & (events["y"] < y0 + height)
    out = events[keep].copy()
    out["x"] -= x0
    out["y"] -= y0
    return out


@dataclass(frozen=True)
class Crop:
    """Fixed crop, see :func:`crop`; new sensor size (width, height, 2)."""

    x0: int
    y0: int
    width: int
    height: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return crop(events, self.x0, self.y0, self.width, self.height)


def slice_by_time(events: np.ndarray, window_us: int, stride_us: int | None = None,
                  t0: int | None = None, t_end: int | None = None) -> list[np.ndarray]:
    """Windows [t0 + i s, t0 + i s + w) for i = 0.. while the window start is < t_end (default last t + 1)."""
    stride_us = window_us if stride_us is None else stride_us
    if window_us <= 0 or stride_us <= 0:
        raise ValueError(f"window_us={window_us}, stride_us={stride_us}: must be > 0")
    if len(events) == 0:
        return []
    t = events["t"]
    t0 = int(t[0]) if t0 is None else int(t0)
    t_end = int(t[-1]) + 1 if t_end is None else int(t_end)
    starts = np.arange(t0, t_end, stride_us)
    lo = np.searchsorted(t, starts, side="left")
    hi = np.searchsorted(t, starts + window_us, side="left")
    return [events[a:b] for a, b in zip(lo, hi)]


@dataclass(frozen=True)
class SliceByTime:
    """Time-window slicing, see :func:`slice_by_time`."""

    window_us: int
    stride_us: int | None = None

    def __call__(self, events: np.ndarray) -> list[np.ndarray]:
        return slice_by_time(events, self.window_us, self.stride_us)


_pad_time_major = PadTensors(batch_first=False)


def collate_time_major(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """[((T_i, C, H, W) frames, label), ...] -> ((T, B, C, H, W) float32, (B,) labels), zero-padded in time."""
    batch = [(torch.as_tensor(np.asarray(x), dtype=torch.float32), torch.as_tensor(y)) for x, y in batch]
    return _pad_time_major(batch)


class DiskCachedDataset(torch.utils.data.Dataset):
    """Wraps a dataset of (array, label); sample i is computed once (with ``transform``) and stored as
    ``cache_dir/{i}.npz`` (written atomically). Change ``cache_dir`` when the transform changes."""

    def __init__(self, dataset, cache_dir: str | Path, transform=None):
        self.dataset, self.transform = dataset, transform
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        path = self.cache_dir / f"{i}.npz"
        if path.exists():
            with np.load(path) as z:
                return z["data"], z["target"][()]
        data, target = self.dataset[i]
        if self.transform is not None:
            data = self.transform(data)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, data=data, target=np.asarray(target))

        atomic_write(path, write)
        return data, target
