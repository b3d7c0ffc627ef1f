"""Where StereoSpike's data come from: the embedded synthetic stereo scene or an MVSEC-layout hdf5 file.

Both are read by ``spikes.datasets.MVSECStereo(path, split)``, which yields ``(x (4, H, W) counts,
depth (H, W) metres, NaN invalid)``; ``'embedded'`` names the small synthetic scene written by
``spikes.datasets.stereo_depth_file`` (no download).
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
        raise FileNotFoundError(f"stereo data {path} does not exist (give 'embedded' or an MVSEC-layout hdf5 file)")
    return path


def open_split(data: str | Path, split: str, cache_dir: str | Path | None = None, seed: int = 0) -> StereoData:
    """One split ('train', 'val' or 'test') of ``data`` as :class:`StereoData`."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
    from spikes import datasets
    if not hasattr(datasets, "MVSECStereo"):
        raise RuntimeError("spikes.datasets.MVSECStereo is not available in this install")
    path = data_path(data, cache_dir, seed)
    return StereoData(datasets.MVSECStereo(path, split=split), name=f"{path} [{split}]")


def data_fb(data: StereoData, path: str | Path | None = None) -> float | None:
    """Focal length x baseline (px m) of a stereo set: the data set's ``fb`` attribute, else the hdf5 file's
    ``focal_px`` and ``baseline_m`` attributes (the embedded set has them), else None."""
    fb = getattr(data.dataset, "fb", None)
    if fb:
        return float(fb)
    if path is not None and Path(path).is_file():
        import h5py
        try:
            with h5py.File(path, "r") as f:
                if "focal_px" in f.attrs and "baseline_m" in f.attrs:
                    return float(f.attrs["focal_px"]) * float(f.attrs["baseline_m"])
        except OSError:
            return None
    return None
