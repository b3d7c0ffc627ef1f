"""Tiny data trees in the real on-disk layouts, built in a temporary folder (each in well under a second).

- :func:`make_nmnist_tree`: tonic's N-MNIST layout ``root/NMNIST/{Train,Test}/<digit>/*.bin`` (tonic reads every
  ``.bin`` under the split folder; the label is the folder name's last character), from the real
  ``nmnist/sample_nmnist.bin`` of ../shared/data/events (linked, as ``Train/0/00000.bin``) plus tiny recordings
  written in the same 40-bit ATIS format by :func:`encode_atis`;
- :func:`make_dvsgesture_tree`: tonic's preprocessed DVS Gesture layout
  ``root/DVSGesture/{ibmGestureTrain,ibmGestureTest}/userNN_<lighting>/<label>.npy`` (columns x, y, p, t in ms;
  tonic multiplies t by 1000 and labels each file by its name);
- :func:`make_ncaltech101_tree`, :func:`make_pokerdvs_tree`: tonic's N-Caltech101 and POKER-DVS layouts, tiny
  generated recordings;
- :func:`make_events_dir`: an ``events:DIR`` folder, one sub-folder per class, holding links to real recordings
  of different formats (N-MNIST .bin, AEDAT4, DAT, EVT3 RAW, EVT2 RAW without geometry, with ``sensor_size.txt``).

Each returns the path to pass (the data root, or DIR). The generated samples come from :func:`nmnist_sample` and
:func:`dvsgesture_sample` (deterministic), so tests can compute the expected frames by hand.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_EVENTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "events"
REAL_NMNIST = SHARED_EVENTS / "nmnist" / "sample_nmnist.bin"

NMNIST_CLASSES = (0, 1, 2)
NMNIST_TRAIN_PER_CLASS = 2       # generated files per class in Train (class 0 also holds the real sample)
NMNIST_TEST_PER_CLASS = 1
DVS_TRAIN_USERS = ("user01_fluorescent", "user02_led")
DVS_TEST_USERS = ("user24_fluorescent",)
DVS_LABELS = (0, 3, 10)


def require_shared() -> Path:
    """../shared/data/events, or skip the test."""
    if not SHARED_EVENTS.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_EVENTS}")
    return SHARED_EVENTS


def encode_atis(x, y, t, p) -> bytes:
    """Events in N-MNIST's 40-bit format: per event bytes x, y, p << 7 | t[22:16], t[15:8], t[7:0]."""
    x, y, t, p = (np.asarray(a, np.int64) for a in (x, y, t, p))
    if len(t) and (t.min() < 0 or t.max() >= 1 << 23):
        raise ValueError("ATIS timestamps must lie in [0, 2**23) us (no overflow events written)")
    if len(x) and (x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 239):
        raise ValueError("ATIS x must lie in [0, 255] and y in [0, 239] (y = 240 marks a timestamp overflow)")
    raw = np.stack([x, y, ((p != 0).astype(np.int64) << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], 1).astype(np.uint8)
    return raw.tobytes()


def nmnist_sample(label: int, k: int, n: int = 120) -> tuple[np.ndarray, ...]:
    """Generated N-MNIST-like sample ``k`` of class ``label``: ``(x, y, t us, p)``, a bar at x = 4 + 10 label."""
    rng = np.random.default_rng([label, k])
    x = 4 + 10 * label + rng.integers(0, 3, n)
    y = rng.integers(0, 34, n)
    t = np.sort(rng.integers(0, 300_000, n))
    p = rng.integers(0, 2, n)
    return x, y, t, p


def make_nmnist_tree(root: str | Path) -> Path:
    """``root/NMNIST/{Train,Test}/<digit>/*.bin`` (see module docstring); returns ``root`` (the data root)."""
    real = require_shared() / "nmnist" / "sample_nmnist.bin"
    root = Path(root)
    for split, per_class in (("Train", NMNIST_TRAIN_PER_CLASS), ("Test", NMNIST_TEST_PER_CLASS)):
        for label in NMNIST_CLASSES:
            folder = root / "NMNIST" / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                seed_k = k if split == "Train" else 100 + k
                (folder / f"{k + 1:05d}.bin").write_bytes(encode_atis(*nmnist_sample(label, seed_k)))
    os.symlink(real, root / "NMNIST" / "Train" / "0" / "00000.bin")
    return root


def dvsgesture_sample(user: str, label: int, n: int = 150) -> np.ndarray:
    """Generated DVS Gesture sample: ``(n, 4)`` int64 columns x, y, p, t (ms), as tonic's .npy files hold them."""
    rng = np.random.default_rng([sum(map(ord, user)), label])
    x = rng.integers(0, 128, n)
    y = np.clip(8 * label + rng.integers(0, 8, n), 0, 127)
    p = rng.integers(0, 2, n)
    t = np.sort(rng.integers(0, 1500, n))
    return np.stack([x, y, p, t], 1).astype(np.int64)


def make_dvsgesture_tree(root: str | Path) -> Path:
    """``root/DVSGesture/{ibmGestureTrain,ibmGestureTest}/userNN_<lighting>/<label>.npy``; returns ``root``."""
    root = Path(root)
    for split, users in (("ibmGestureTrain", DVS_TRAIN_USERS), ("ibmGestureTest", DVS_TEST_USERS)):
        for user in users:
            folder = root / "DVSGesture" / split / user
            folder.mkdir(parents=True, exist_ok=True)
            for label in DVS_LABELS:
                np.save(folder / f"{label}.npy", dvsgesture_sample(user, label))
    return root


NCALTECH_CLASSES = ("ant", "bonsai")
NCALTECH_PER_CLASS = 5


def ncaltech_sample(cls: str, k: int, n: int = 100) -> tuple[np.ndarray, ...]:
    """Generated N-Caltech101-like sample: ``(x, y, t us, p)`` spread over a box that does not start at 0 (tonic
    shifts it) and, for k = 0, is wider than the 240-pixel default frame."""
    rng = np.random.default_rng([sum(map(ord, cls)), k])
    x0, y0 = 3 + k, 7
    x = x0 + rng.integers(0, 250 if k == 0 else 100, n)
    y = y0 + rng.integers(0, 150, n)
    return x, y, np.sort(rng.integers(0, 200_000, n)), rng.integers(0, 2, n)


def make_ncaltech101_tree(root: str | Path) -> Path:
    """``root/NCALTECH101/Caltech101/<class>/image_NNNN.bin`` (tonic's layout; no split); returns ``root``."""
    root = Path(root)
    for cls in NCALTECH_CLASSES:
        folder = root / "NCALTECH101" / "Caltech101" / cls
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(NCALTECH_PER_CLASS):
            (folder / f"image_{k + 1:04d}.bin").write_bytes(encode_atis(*ncaltech_sample(cls, k)))
    return root


POKER_CLASSES = ("cl", "he", "di", "sp")


def pokerdvs_sample(cls: str, k: int, n: int = 60) -> np.ndarray:
    """Generated POKER-DVS sample: ``(n, 4)`` columns t (us), x, y, p, as tonic's .npy files hold them."""
    rng = np.random.default_rng([sum(map(ord, cls)), k])
    return np.stack([np.sort(rng.integers(0, 20_000, n)), rng.integers(0, 35, n), rng.integers(0, 35, n),
                     rng.integers(0, 2, n)], 1).astype(np.int64)


def make_pokerdvs_tree(root: str | Path) -> Path:
    """``root/POKERDVS/{pips_train,pips_test}/<cl|he|di|sp>/*.npy`` (2 train, 1 test per class); returns ``root``."""
    root = Path(root)
    for split, n in (("pips_train", 2), ("pips_test", 1)):
        for cls in POKER_CLASSES:
            folder = root / "POKERDVS" / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                np.save(folder / f"{cls}{k}.npy", pokerdvs_sample(cls, k + (10 if split == "pips_test" else 0)))
    return root


# class -> [(link name, real file under ../shared/data/events)]
EVENTS_DIR_FILES = {
    "a": [("a1.bin", "nmnist/sample_nmnist.bin"), ("a2.aedat4", "dvxplorer/sample.aedat4"),
          ("a3.dat", "ncars/sample_ncars.dat")],
    "b": [("b1.dat", "ncars/NCARS_obj_004397_td.dat"), ("b2.raw", "ros1_evt3/test_events_1_extracted.raw"),
          ("b3.raw", "prophesee_evt2/faery_evt2.raw")],
}
EVENTS_DIR_RAW_SENSOR = (640, 480)   # faery_evt2.raw has no geometry line: sensor_size.txt gives it


def make_events_dir(root: str | Path, sensor_txt: bool = True) -> Path:
    """``root/events/<class>/<links to real recordings>`` (+ ``sensor_size.txt`` "640 480"); returns the folder."""
    shared = require_shared()
    folder = Path(root) / "events"
    for cls, files in EVENTS_DIR_FILES.items():
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for name, rel in files:
            os.symlink(shared / rel, folder / cls / name)
    if sensor_txt:
        (folder / "sensor_size.txt").write_text("%d %d\n" % EVENTS_DIR_RAW_SENSOR)
    return folder
