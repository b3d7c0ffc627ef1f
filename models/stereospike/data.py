"""Where StereoSpike's data come from: the embedded synthetic scene, one MVSEC-layout file, or MVSEC itself.

All are read by ``spikes.datasets.MVSECStereo``, which yields ``(x (4, H, W) counts, depth (H, W) metres,
NaN invalid)``. ``data`` is

- ``'embedded'``: the small synthetic scene of ``spikes.datasets.stereo_depth_file`` (generated, no download);
- an hdf5 file with ``spikes_split_{train,val,test}`` attributes (MVSEC layout);
- a directory holding MVSEC's ``indoor_flying{1,2,3}_data.hdf5`` and ``indoor_flying{1,2,3}_gt.hdf5``:
  StereoSpike's split 1 (train flying2 + flying3, val 200 fixed frames of flying1, test the rest of
  flying1). If the directory also holds MVSEC's rectification maps ``indoor_flying_{left,right}_{x,y}_map.txt``
  (260 x 346 each), events are rectified with them.

:class:`StereoData` holds a split as batches (what the trainer's ``stereo-embedded`` / ``stereo:PATH`` sets wrap).
h5py is imported only where a file's attributes are read (a heavy optional dependency).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from spikes.datasets import MVSECStereo, stereo_depth_file


class StereoData:
    """A stereo-depth data set as batches: ``batch(idx) -> (x (B, 4, H, W), depth (B, H, W))``.

    Small sets (below ``max_bytes``) are stacked in memory once; larger ones (full MVSEC) are read item by
    item on demand. ``fb``: focal length x baseline (px m) of the one-pixel accuracy, if known (given, else the
    data set's own ``fb`` attribute, else None).
    """

    def __init__(self, dataset: Dataset, name: str = "data set", max_bytes: float = 1e9, fb: float | None = None):
        self.dataset, self.name = dataset, name
        self.fb: float | None = float(fb) if fb else (float(dataset.fb) if getattr(dataset, "fb", None) else None)
        n = len(dataset)
        if n == 0:
            raise ValueError(f"{name} is empty")
        x, d = self._item(0)
        if x.dim() != 3 or d.dim() != 2 or x.shape[-2:] != d.shape:
            raise ValueError(f"{name}: expected x (C, H, W) and depth (H, W), got x {tuple(x.shape)} and depth "
                             f"{tuple(d.shape)}")
        self.in_channels = x.shape[0]
        self.input_size: tuple[int, int] = tuple(d.shape)
        self._n = n
        self.x: torch.Tensor | None = None
        self.depth: torch.Tensor | None = None
        if n * (x.numel() + d.numel()) * 4 <= max_bytes:
            items = [self._item(i) for i in range(n)]
            self.x = torch.stack([a for a, _ in items])
            self.depth = torch.stack([b for _, b in items])

    def _item(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, d = self.dataset[i]
        return (torch.as_tensor(np.asarray(x), dtype=torch.float32),
                torch.as_tensor(np.asarray(d), dtype=torch.float32))

    def __len__(self) -> int:
        return self._n

    def batch(self, idx: torch.Tensor | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.x is not None:
            idx = torch.as_tensor(idx)
            return self.x[idx], self.depth[idx]
        items = [self._item(int(i)) for i in idx]
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield self.batch(list(range(start, min(start + batch_size, len(self)))))

    def mean_depth(self) -> float:
        """Mean of the valid depth pixels over the whole set."""
        s, n = 0.0, 0
        for _, d in self.batches(64):
            valid = d[~torch.isnan(d)]
            s, n = s + float(valid.double().sum()), n + valid.numel()
        if n == 0:
            raise ValueError(f"{self.name} has no valid depth pixel")
        return s / n


SPLITS = ("train", "val", "test")


def data_path(data: str | Path, cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """The hdf5 file behind ``data`` ('embedded' or a path to an MVSEC-layout file)."""
    if str(data) == "embedded":
        return Path(stereo_depth_file(seed=seed, cache_dir=cache_dir))
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"stereo data {path} does not exist (give 'embedded', an MVSEC-layout hdf5 file "
                                "or a directory of MVSEC indoor_flying files)")
    return path


SPLIT1_SEQUENCES = {"train": ("indoor_flying2", "indoor_flying3"), "val": ("indoor_flying1",),
                    "test": ("indoor_flying1",)}


def mvsec_rect_maps(directory: Path) -> dict | None:
    """MVSEC's rectification maps in ``directory`` as {"left": (H, W, 2), "right": ...}, or None if absent."""
    names = {(cam, ax): directory / f"indoor_flying_{cam}_{ax}_map.txt" for cam in ("left", "right") for ax in "xy"}
    if not all(p.is_file() for p in names.values()):
        return None
    return {cam: np.stack([np.loadtxt(names[cam, "x"]), np.loadtxt(names[cam, "y"])], -1) for cam in ("left", "right")}


def open_mvsec_split1(directory: str | Path, split: str):
    """StereoSpike split 1 of the MVSEC indoor_flying files in ``directory`` (a torch Dataset)."""
    directory = Path(directory)
    rect = mvsec_rect_maps(directory)
    parts = []
    for seq in SPLIT1_SEQUENCES[split]:
        data, gt = directory / f"{seq}_data.hdf5", directory / f"{seq}_gt.hdf5"
        if not data.is_file() or not gt.is_file():
            raise FileNotFoundError(f"MVSEC split 1 needs {data.name} and {gt.name} in {directory}")
        parts.append(MVSECStereo(data, split, gt_path=gt, sequence=seq, rect_maps=rect))
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def open_split(data: str | Path, split: str, cache_dir: str | Path | None = None, seed: int = 0) -> StereoData:
    """One split ('train', 'val' or 'test') of ``data`` as :class:`StereoData`."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
    path = data_path(data, cache_dir, seed)
    if path.is_dir():
        return StereoData(open_mvsec_split1(path, split), name=f"MVSEC split 1 in {path} [{split}]")
    dataset = MVSECStereo(path, split=split)
    return StereoData(dataset, name=f"{path} [{split}]", fb=data_fb(dataset, path))


def data_fb(dataset: Dataset, path: str | Path | None = None) -> float | None:
    """Focal length x baseline (px m) of a stereo set: the data set's ``fb`` attribute, else the hdf5 file's
    ``focal_px`` and ``baseline_m`` attributes (the embedded set has them), else None (MVSEC files have none)."""
    fb = getattr(dataset, "fb", None)
    if fb:
        return float(fb)
    if path is None or not Path(path).is_file():
        return None
    import h5py
    try:
        with h5py.File(path, "r") as f:
            if "focal_px" in f.attrs and "baseline_m" in f.attrs:
                return float(f.attrs["focal_px"]) * float(f.attrs["baseline_m"])
    except OSError:
        return None
    return None
