"""N-MNIST, DVS Gesture, POKER-DVS and N-Caltech101 through tonic, never downloading.

Each class is tonic's, with the same folder layout under ``root`` (tonic's ``save_to``), but
(1) nothing is downloaded: if the extracted folder is missing (or holds no sample file) a
:class:`FileNotFoundError` says where to get the data and where to put it; (2) samples come out as our
EVENT_DTYPE arrays (x, y int16, t int64 us, p int8 1 = ON) before ``transform`` is applied.

Expected layouts (``root`` = the folder you pass):
- ``NMNIST``: root/NMNIST/Train/<digit>/*.bin and root/NMNIST/Test/<digit>/*.bin
- ``DVSGesture``: root/DVSGesture/ibmGestureTrain/userNN_<lighting>/<label>.npy (tonic's preprocessed
  archives, columns x, y, p, t in ms) and ibmGestureTest/...
- ``POKERDVS``: root/POKERDVS/pips_train/<cl|he|di|sp>/*.npy (columns t, x, y, p) and pips_test/...
- ``NCALTECH101``: root/NCALTECH101/Caltech101/<class>/*.bin
"""
from __future__ import annotations

import os
from pathlib import Path

import tonic.datasets as td
from tonic.transforms import Compose

from .events import as_events

SOURCES = {  # where to get each set, and the sample file suffix tonic looks for
    "NMNIST": ("https://www.garrickorchard.com/datasets/n-mnist (Train.zip, Test.zip)", ".bin"),
    "DVSGesture": ("tonic's preprocessed ibmGestureTrain/ibmGestureTest archives "
                   "(https://figshare.com/ndownloader/files/38022171 and 38020584)", ".npy"),
    "POKERDVS": ("http://www2.imse-cnm.csic.es/caviar/POKERDVS.html (tonic's pips_train/pips_test .npy)", ".npy"),
    "NCALTECH101": ("https://www.garrickorchard.com/datasets/n-caltech101 (Caltech101.zip)", ".bin"),
}
LAYOUTS = {  # what tonic reads under root (its save_to)
    "NMNIST": "NMNIST/Train/<digit>/*.bin and NMNIST/Test/<digit>/*.bin",
    "DVSGesture": "DVSGesture/ibmGestureTrain/userNN_<lighting>/<label>.npy and DVSGesture/ibmGestureTest/...",
    "POKERDVS": "POKERDVS/pips_train/<cl|he|di|sp>/*.npy and POKERDVS/pips_test/...",
    "NCALTECH101": "NCALTECH101/Caltech101/<class>/*.bin (tonic reads every .bin under NCALTECH101/)",
}


class _NoDownload:
    """Mixin: replaces tonic's download with a clear error; converts samples to EVENT_DTYPE."""

    def __init__(self, root: str | Path, *args, transform=None, **kwargs):
        user = transform
        super().__init__(str(root), *args, transform=Compose([as_events, user]) if user else as_events, **kwargs)

    def _expected(self) -> Path:
        return Path(self.location_on_system) / self.folder_name

    def _check_exists(self) -> bool:
        folder = self._expected()
        ext = SOURCES[type(self).__name__][1]
        if not folder.is_dir():
            return False
        return any(f.endswith(ext) for _, _, files in os.walk(folder) for f in files)

    def download(self) -> None:
        name = type(self).__name__
        url, ext = SOURCES[name]
        root = Path(self.location_on_system).parent
        hint = ""
        # the user passed the data set's own folder instead of its parent (N-Caltech101's folder_name is "": tonic
        # reads every .bin under root/NCALTECH101)
        if self.folder_name and (root / self.folder_name).is_dir():
            hint = (f" ({root} holds {self.folder_name}/ itself: pass its parent {root.parent}, "
                    f"under which tonic looks for {name}/{self.folder_name})")
        raise FileNotFoundError(
            f"{name}: no {ext} files under {self._expected()}{hint}. Nothing is downloaded at run time: "
            f"get the data from {url} and extract it so that {self._expected()} holds it "
            "(layout in spikes.datasets.tonic_sets)."
        )

    def _copy_and_extract_local_data(self) -> None:  # POKERDVS's variant of download
        self.download()


class NMNIST(_NoDownload, td.NMNIST):
    """tonic.datasets.NMNIST(root, train=True, first_saccade_only=False, stabilize=False, transform=None)."""


class DVSGesture(_NoDownload, td.DVSGesture):
    """tonic.datasets.DVSGesture(root, train=True, transform=None)."""


class POKERDVS(_NoDownload, td.POKERDVS):
    """tonic.datasets.POKERDVS(root, train=True, transform=None)."""


class NCALTECH101(_NoDownload, td.NCALTECH101):
    """tonic.datasets.NCALTECH101(root, transform=None); sensor size varies per sample."""
