"""MVSEC stereo depth in the authors' hdf5 layout, as StereoSpike input.

File layout read (MVSEC ``*_data.hdf5`` / ``*_gt.hdf5``, or one file holding both, e.g. the embedded
:func:`~spikes.datasets.stereo_synth.stereo_depth_file`):
``davis/{left,right}/events`` (N, 4) [x, y, t_seconds, p] (p in {-1, +1} or {0, 1}; > 0 = ON),
``davis/left/depth_image_rect`` (K, H, W) metres, NaN or 0 = invalid, ``davis/left/depth_image_rect_ts`` (K,).

Sample k: x = counts of the events with t in [ts_k - window, ts_k) per pixel, stacked as
(left ON, left OFF, right ON, right OFF) -> (4, H, W) float32 raw counts (no normalisation);
depth = depth_image_rect[k] (H, W) float32 with invalid pixels (0, NaN, inf) set to NaN.
Optional rectification (StereoSpike rectifies with MVSEC's calibration maps): ``rect_maps`` =
{"left": (H, W, 2), "right": (H, W, 2)} arrays giving each raw pixel's rectified (x, y); events are rounded
to the nearest rectified pixel and dropped outside the image.

Splits. A file written by :func:`stereo_depth_file` carries its frame ranges as attributes. For the real
MVSEC indoor_flying sequences pass ``sequence=`` and StereoSpike's split 1 is used (:data:`SPLIT1`,
half-open frame ranges [start, stop)): train indoor_flying2 [159, 1581) and indoor_flying3 [124, 1816)
(concatenate the two data sets); indoor_flying1 [139, 1201) is divided into val = 200 evenly spaced
frames (our fixed choice: the paper does not say which 200) and test = the rest. Or pass ``frames=``.
h5py is imported only when a file is opened.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SPLIT1: dict[str, dict[str, tuple[int, int]]] = {
    "indoor_flying1": {"valtest": (139, 1201)},
    "indoor_flying2": {"train": (159, 1581)},
    "indoor_flying3": {"train": (124, 1816)},
}
N_VAL_FLYING1 = 200
_CHANNELS = ("left ON", "left OFF", "right ON", "right OFF")


def split1_frames(sequence: str, split: str) -> np.ndarray:
    """StereoSpike split 1 frame indices of one indoor_flying sequence (empty if the sequence is not in it)."""
    if sequence not in SPLIT1:
        raise ValueError(f"sequence={sequence!r}: split 1 uses {sorted(SPLIT1)}")
    ranges = SPLIT1[sequence]
    if "train" in ranges:
        return np.arange(*ranges["train"]) if split == "train" else np.arange(0)
    allf = np.arange(*ranges["valtest"])
    val = allf[np.linspace(0, len(allf) - 1, N_VAL_FLYING1).round().astype(int)]
    if split == "val":
        return val
    if split == "test":
        return np.setdiff1d(allf, val)
    return np.arange(0)


def _bisect_rows(ds, times: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """Row indices i with ds[i-1, 2] < t <= ds[i, 2] (searchsorted 'left' on the time column) without
    reading the whole (possibly multi-GB) events array: a coarse sampled column, then one block per query."""
    n = ds.shape[0]
    if n <= 4 * block:
        return np.searchsorted(ds[:, 2], times, side="left")
    coarse = ds[::block, 2]
    out = np.empty(len(times), dtype=np.int64)
    cached: dict[int, np.ndarray] = {}
    for j, t in enumerate(times):
        c = int(np.searchsorted(coarse, t, side="left"))  # coarse[c-1] < t <= coarse[c]
        if c == 0:
            out[j] = 0
            continue
        lo = (c - 1) * block
        if lo not in cached:
            cached[lo] = ds[lo : min(lo + block + 1, n), 2]
        out[j] = lo + int(np.searchsorted(cached[lo], t, side="left"))
    return out


def _counts(ev: np.ndarray, H: int, W: int, rect: np.ndarray | None) -> np.ndarray:
    """(2, H, W) ON/OFF counts of (n, 4) [x, y, t, p] rows."""
    x = ev[:, 0].astype(np.int64)
    y = ev[:, 1].astype(np.int64)
    on = ev[:, 3] > 0
    if rect is not None:
        inside = (x >= 0) & (x < rect.shape[1]) & (y >= 0) & (y < rect.shape[0])
        x, y, on = x[inside], y[inside], on[inside]
        xy = rect[y, x]
        x, y = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
    keep = (x >= 0) & (x < W) & (y >= 0) & (y < H)
    flat = np.where(on[keep], 0, H * W) + y[keep] * W + x[keep]
    return np.bincount(flat, minlength=2 * H * W).reshape(2, H, W).astype(np.float32)


class MVSECStereo(torch.utils.data.Dataset):
    """StereoSpike samples (x (4, H, W) float32 counts, depth (H, W) float32, NaN invalid); see module doc."""

    channels = _CHANNELS

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        *,
        gt_path: str | Path | None = None,
        sequence: str | None = None,
        frames: np.ndarray | range | None = None,
        window_s: float = 0.05,
        rect_maps: dict[str, np.ndarray] | None = None,
    ):
        import h5py

        self.path = Path(path)
        self.gt_path = Path(gt_path) if gt_path is not None else self.path
        for p in {self.path, self.gt_path}:
            if not p.is_file():
                raise FileNotFoundError(
                    f"{p}: MVSEC file not found. Get indoor_flying*_data.hdf5 and *_gt.hdf5 from the MVSEC site "
                    "(https://daniilidis-group.github.io/mvsec/) or use spikes.datasets.stereo_depth_file()"
                )
        if split not in ("train", "val", "test"):
            raise ValueError(f"split={split!r}: expected 'train', 'val' or 'test'")
        if window_s <= 0:
            raise ValueError(f"window_s={window_s}: must be > 0")
        self.window_s = float(window_s)
        self.rect_maps = rect_maps or {}
        with h5py.File(self.gt_path, "r") as g:
            for key in ("davis/left/depth_image_rect", "davis/left/depth_image_rect_ts"):
                if key not in g:
                    raise KeyError(f"{self.gt_path}: no '{key}' (not an MVSEC ground-truth file)")
            self.depth_ts = g["davis/left/depth_image_rect_ts"][:].astype(np.float64)
            K, self.H, self.W = g["davis/left/depth_image_rect"].shape
            attrs = dict(g.attrs)
        if frames is not None:
            idx = np.asarray(frames, dtype=np.int64)
        elif sequence is not None:
            idx = split1_frames(sequence, split)
        elif f"spikes_split_{split}" in attrs:
            idx = np.arange(*attrs[f"spikes_split_{split}"])
        else:
            raise ValueError(f"{self.gt_path}: no split attributes; pass sequence='indoor_flying1'|2|3 or frames=")
        if len(idx) and (idx.min() < 0 or idx.max() >= K):
            raise IndexError(f"{self.gt_path}: frames {idx.min()}..{idx.max()} outside the file's {K} depth frames")
        self.frames = idx
        ts = self.depth_ts[idx]
        self._rows = {}
        with h5py.File(self.path, "r") as f:
            for cam in ("left", "right"):
                key = f"davis/{cam}/events"
                if key not in f:
                    raise KeyError(f"{self.path}: no '{key}' (not an MVSEC data file)")
                ds = f[key]
                if ds.ndim != 2 or ds.shape[1] != 4:
                    raise ValueError(f"{self.path}: '{key}' has shape {ds.shape}, expected (N, 4) [x, y, t, p]")
                self._rows[cam] = (_bisect_rows(ds, ts - self.window_s), _bisect_rows(ds, ts))
        self._h5 = None

    def __len__(self) -> int:
        return len(self.frames)

    def _file(self, which: Path):
        import h5py

        if self._h5 is None:  # opened lazily, per worker process
            self._h5 = {p: h5py.File(p, "r") for p in {self.path, self.gt_path}}
        return self._h5[which]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        f = self._file(self.path)
        parts = []
        for cam in ("left", "right"):
            a, b = self._rows[cam][0][i], self._rows[cam][1][i]
            parts.append(_counts(f[f"davis/{cam}/events"][a:b], self.H, self.W, self.rect_maps.get(cam)))
        x = torch.from_numpy(np.concatenate(parts))
        d = self._file(self.gt_path)["davis/left/depth_image_rect"][self.frames[i]].astype(np.float32)
        d[~np.isfinite(d) | (d <= 0)] = np.nan
        return x, torch.from_numpy(d)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_h5"] = None
        return state
