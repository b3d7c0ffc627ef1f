"""Where StereoSpike's data come from: the embedded synthetic scene, one MVSEC-layout file, or MVSEC itself.

All are read by ``spikes.datasets.MVSECStereo``, which yields ``(x (4, H, W) counts, depth (H, W) metres,
NaN invalid)``. ``data`` is

- ``'embedded'``: the small synthetic scene of ``spikes.datasets.stereo_depth_file`` (generated, no download);
- an hdf5 file with ``spikes_split_{train,val,test}`` attributes (MVSEC layout);
- a directory holding MVSEC's ``indoor_flying{1,2,3}_data.hdf5`` and ``indoor_flying{1,2,3}_gt.hdf5``:
  StereoSpike's split 1 (train flying2 + flying3, val 200 fixed frames of flying1, test the rest of
  flying1). If the directory also holds MVSEC's rectification maps ``indoor_flying_{left,right}_{x,y}_map.txt``
  (260 x 346 each), events are rectified with them.
"""
from __future__ import annotations

from pathlib import Path

from spikes.models.stereospike.train import StereoData

SPLITS = ("train", "val", "test")


def data_path(data: str | Path, cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """The hdf5 file behind ``data`` ('embedded' or a path to an MVSEC-layout file)."""
    if str(data) == "embedded":
        from spikes import datasets
        if not hasattr(datasets, "stereo_depth_file"):
            raise RuntimeError("spikes.datasets.stereo_depth_file is not available in this install")
        return Path(datasets.stereo_depth_file(seed=seed, cache_dir=cache_dir))
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"stereo data {path} does not exist (give 'embedded', an MVSEC-layout hdf5 file "
                                "or a directory of MVSEC indoor_flying files)")
    return path


SPLIT1_SEQUENCES = {"train": ("indoor_flying2", "indoor_flying3"), "val": ("indoor_flying1",),
                    "test": ("indoor_flying1",)}


def mvsec_rect_maps(directory: Path) -> dict | None:
    """MVSEC's rectification maps in ``directory`` as {"left": (H, W, 2), "right": ...}, or None if absent."""
    import numpy as np
    names = {(cam, ax): directory / f"indoor_flying_{cam}_{ax}_map.txt" for cam in ("left", "right") for ax in "xy"}
    if not all(p.is_file() for p in names.values()):
        return None
    return {cam: np.stack([np.loadtxt(names[cam, "x"]), np.loadtxt(names[cam, "y"])], -1) for cam in ("left", "right")}


def open_mvsec_split1(directory: str | Path, split: str):
    """StereoSpike split 1 of the MVSEC indoor_flying files in ``directory`` (a torch Dataset)."""
    from torch.utils.data import ConcatDataset

    from spikes.datasets import MVSECStereo
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
    from spikes import datasets
    if not hasattr(datasets, "MVSECStereo"):
        raise RuntimeError("spikes.datasets.MVSECStereo is not available in this install")
    path = data_path(data, cache_dir, seed)
    if path.is_dir():
        return StereoData(open_mvsec_split1(path, split), name=f"MVSEC split 1 in {path} [{split}]")
    return StereoData(datasets.MVSECStereo(path, split=split), name=f"{path} [{split}]")


def data_fb(data: StereoData, path: str | Path | None = None) -> float | None:
    """Focal length x baseline (px m) of a stereo set: the data set's ``fb`` attribute, else the hdf5 file's
    ``focal_px`` and ``baseline_m`` attributes (the embedded set has them), else None (MVSEC files have none)."""
    fb = getattr(data.dataset, "fb", None)
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
