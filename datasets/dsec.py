"""DSEC stereo (Gehrig et al. 2021) in the authors' folder layout, as StereoSpike-style input.

Layout read, per sequence ``root/<sequence>/``:
``events/{left,right}/events.h5`` (``events/x``, ``events/y``, ``events/t`` (us, relative), ``events/p`` (0/1),
``ms_to_idx`` (first event index of each millisecond), ``t_offset`` (us)), optional
``events/{left,right}/rectify_map.h5`` (``rectify_map`` (H, W, 2): rectified (x, y) of each raw pixel),
``disparity/event/*.png`` (16-bit, disparity = value / 256, 0 = invalid) and ``disparity/timestamps.txt``
(us, same clock as t + t_offset).

Sample k: x = (left ON, left OFF, right ON, right OFF) counts (4, H, W) float32 of the events in the
``window_us`` before disparity timestamp k (rectified when the maps exist, nearest pixel), and the
disparity (H, W) float32 in pixels with invalid = NaN. Depth, if wanted, is f B / disparity with the
sequence's calibration (``calibration/cam_to_cam.yaml``, not read here). h5py is imported only when a
sequence is opened.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


class DSECStereo(torch.utils.data.Dataset):
    """One DSEC sequence: (x (4, H, W) counts, disparity (H, W) px, NaN invalid)."""

    def __init__(self, root: str | Path, sequence: str, *, window_us: int = 50_000, rectify: bool = True,
                 frames: np.ndarray | range | None = None):
        import h5py

        self.seq_dir = Path(root) / sequence
        disp_dir = self.seq_dir / "disparity"
        ts_file = disp_dir / "timestamps.txt"
        if not ts_file.is_file():
            raise FileNotFoundError(
                f"{ts_file}: DSEC disparity timestamps not found. Get the sequence's events and disparity archives "
                f"from https://dsec.ifi.uzh.ch/dsec-datasets/download/ and extract them into {self.seq_dir}"
            )
        self.disp_ts = np.atleast_1d(np.loadtxt(ts_file, dtype=np.int64, comments="#"))
        self.png = sorted((disp_dir / "event").glob("*.png"))
        if len(self.png) != len(self.disp_ts):
            raise ValueError(f"{disp_dir}: {len(self.png)} disparity PNGs for {len(self.disp_ts)} timestamps")
        self.frames = np.arange(len(self.disp_ts)) if frames is None else np.asarray(frames, dtype=np.int64)
        self.window_us = int(window_us)
        self._files, self.rect, self._rows = {}, {}, {}
        for cam in ("left", "right"):
            path = self.seq_dir / "events" / cam / "events.h5"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: DSEC events not found (extract {sequence}_events_{cam} here)")
            with h5py.File(path, "r") as f:
                for key in ("events/t", "ms_to_idx", "t_offset"):
                    if key not in f:
                        raise KeyError(f"{path}: no '{key}' (not a DSEC events.h5)")
                t_offset = int(f["t_offset"][()])
                ms_to_idx = f["ms_to_idx"][:]
                rel = self.disp_ts[self.frames] - t_offset
                self._rows[cam] = (self._index(f["events/t"], ms_to_idx, rel - self.window_us),
                                   self._index(f["events/t"], ms_to_idx, rel))
            rmap = path.parent / "rectify_map.h5"
            if rectify and rmap.is_file():
                with h5py.File(rmap, "r") as f:
                    self.rect[cam] = f["rectify_map"][:]
        self.H, self.W = np.asarray(Image.open(self.png[0])).shape[:2]

    @staticmethod
    def _index(t_ds, ms_to_idx: np.ndarray, t_rel: np.ndarray) -> np.ndarray:
        """First event index with t >= t_rel (searchsorted 'left'), using ms_to_idx to read one ms of t."""
        out = np.empty(len(t_rel), dtype=np.int64)
        n = t_ds.shape[0]
        for j, tq in enumerate(t_rel):
            ms = int(np.clip(tq // 1000, 0, len(ms_to_idx) - 1))
            lo = int(ms_to_idx[ms]) if tq >= 0 else 0
            hi = int(ms_to_idx[ms + 1]) if ms + 1 < len(ms_to_idx) else n
            seg = t_ds[lo:hi]
            out[j] = lo + int(np.searchsorted(seg, tq, side="left"))
        return out

    def __len__(self) -> int:
        return len(self.frames)

    def _counts(self, cam: str, a: int, b: int) -> np.ndarray:
        import h5py

        if cam not in self._files:
            self._files[cam] = h5py.File(self.seq_dir / "events" / cam / "events.h5", "r")
        f = self._files[cam]
        x = f["events/x"][a:b].astype(np.int64)
        y = f["events/y"][a:b].astype(np.int64)
        on = f["events/p"][a:b] > 0
        if cam in self.rect:
            xy = self.rect[cam][y, x]
            x, y = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
        keep = (x >= 0) & (x < self.W) & (y >= 0) & (y < self.H)
        flat = np.where(on[keep], 0, self.H * self.W) + y[keep] * self.W + x[keep]
        return np.bincount(flat, minlength=2 * self.H * self.W).reshape(2, self.H, self.W).astype(np.float32)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.concatenate([self._counts(c, self._rows[c][0][i], self._rows[c][1][i]) for c in ("left", "right")])
        raw = np.asarray(Image.open(self.png[self.frames[i]])).astype(np.float32)
        disp = raw / 256.0
        disp[raw == 0] = np.nan
        return torch.from_numpy(x), torch.from_numpy(disp)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_files"] = {}
        return state
