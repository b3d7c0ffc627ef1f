"""Labelled sets for training: in-memory tensors, or event recordings framed, cached on disk and batched.

A labelled set has ``len(s)``, ``s.batch(idx) -> (x, y)``, ``input_shape`` (per sample, no time axis),
``n_classes``, ``classes`` (index = label), ``targets`` (all labels, int64), ``kind`` ("frames" or "tabular") and
``describe()`` (a JSON-able dict). Two kinds:

- :class:`TensorSet`: tensors held in memory (the embedded digits frames, the synthetic set, tabular sets);
- :class:`FrameSet`: a torch ``Dataset`` of ``(events, label)`` (EVENT_DTYPE events) turned into frames by a
  :class:`FrameTransform`; each sample's frames are computed once and cached on disk.

Framing, per sample (:class:`FrameTransform`), in this order:

1. events not in time order are sorted by ``t`` (stable);
2. ``denoise_us > 0``: tonic ``Denoise(filter_time=denoise_us)``: an event is kept if one of its 4 neighbours had an
   event within the last ``denoise_us`` microseconds (tonic's rule; a per-event Python loop, slow on big
   recordings, which is one reason frames are cached);
3. ``downsample < 1``: tonic ``Downsample(spatial_factor=f)``: ``x' = trunc(f x)``, ``y' = trunc(f y)`` (no event
   dropped); a sensor of width W becomes ``floor(f (W - 1)) + 1`` wide (:func:`downsampled`);
4. a fixed frame of ``W x H`` pixels, anchored at the top-left corner: events with ``x' >= W`` or ``y' >= H`` are
   dropped (crop), smaller recordings leave the rest zero (pad);
5. ``T = n_time_bins`` frames by tonic's ``ToFrame``; ``out[k, p, y, x]`` = number of events of polarity ``p``
   (channel 0 OFF, 1 ON) at the pixel in frame ``k``:
   - ``time_window_us = 0``: ``ToFrame(n_time_bins=T)``: bin width ``w = floor((t_last - t_first) / T)``, frame
     ``k`` takes ``t_first + k w <= t < t_first + (k + 1) w``; the last event, and any at or after
     ``t_first + T w``, fall out (tonic's rule);
   - ``time_window_us = w > 0``: ``ToFrame(time_window=w)`` from ``t_first`` to ``t_first + T w``: the same rule with
     a fixed ``w``, so every frame lasts ``w`` whatever the recording's length (frames past its end are empty,
     events after ``t_first + T w`` are dropped);
6. ``binary``: ``min(out, 1)`` (spikes);
7. ``pool > 1``: ``max`` over ``pool x pool`` blocks (trailing rows and columns that do not fill a block are
   dropped, as in ``torch.nn.functional.max_pool2d``).

Cache: sample ``i``'s frames are ``<cache>/frames/<name>-<split>-<key>/<i>.npz``, written atomically by
:class:`spikes.datasets.transforms.DiskCachedDataset` (ours rather than tonic's: atomic writes, no h5py), binary
frames bit-packed (``np.packbits``), counts as int16. ``key`` is a hash of the framing, the frame size and the
ordered list of samples (file path relative to the data folder, size, mtime, label), so a changed option, split
or file gets a new folder and a stale cache is never read; a train/test limit reads the first N of the same
cache. The sample order of folder-based sets is class-interleaved (:func:`interleave_by_class`), so "the first N
samples" keeps the classes balanced.

``open_tonic_set`` opens N-MNIST, DVS Gesture, POKER-DVS and N-Caltech101 from tonic's own layout (nothing is
downloaded: :mod:`spikes.datasets.tonic_sets`); ``open_event_folder`` a folder of the user's recordings (one
sub-folder per class, any format :func:`spikes.datasets.read_events` reads).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from tqdm.auto import tqdm

from spikes.io import atomic_write_json

from . import tonic_sets
from .cache import cache_dir as resolve_cache_dir
from .events import EventFileError
from .io import detect_format, read_events
from .io._header import header_geometry, split_header
from .transforms import Denoise, DiskCachedDataset, Downsample, ToFrame

__all__ = [
    "TensorSet", "FrameSet", "cached_frame_set", "FrameTransform", "downsampled", "pool_frames", "interleave_by_class",
    "stratified_split", "EventFiles", "open_tonic_set", "open_event_folder", "TONIC_SETS", "EVENT_SUFFIXES",
    "NCALTECH101_FRAME", "TEST_FRACTION",
]

_CACHE_VERSION = 1                     # bump when FrameTransform or the cache format changes (old caches ignored)
TEST_FRACTION = 0.2                    # seeded stratified splits (N-Caltech101, events:DIR): 80 / 20
NCALTECH101_FRAME = (240, 180)         # default (W, H) of N-Caltech101 frames (recordings vary in size)
EVENT_SUFFIXES = (".aedat4", ".bin", ".dat", ".raw", ".bag")   # the files of an event folder that are read


# --------------------------------------------------------------------------- small pure helpers

def downsampled(size: int, factor: float) -> int:
    """Width (or height) of a ``size``-pixel axis after tonic's ``Downsample``: ``floor(factor (size - 1)) + 1``."""
    return int(np.floor(factor * (size - 1))) + 1 if factor != 1 else int(size)


def pool_frames(frames: np.ndarray, k: int) -> np.ndarray:
    """Max over ``k x k`` blocks of the last two axes (floor: trailing rows/columns that fill no block dropped)."""
    if k == 1:
        return frames
    if k > min(frames.shape[-2:]):
        raise ValueError(f"pool={k} is larger than the {frames.shape[-1]}x{frames.shape[-2]} frame")
    H, W = frames.shape[-2] // k, frames.shape[-1] // k
    a = frames[..., :H * k, :W * k]
    return a.reshape(*a.shape[:-2], H, k, W, k).max(axis=(-3, -1))


def interleave_by_class(labels: np.ndarray) -> np.ndarray:
    """Positions ordered so the classes take turns: the first sample of every class (in label order), then the
    second of every class, and so on (a class that runs out drops out); within a class the input order is kept."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), np.int64)
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        rank[pos] = np.arange(len(pos))
    return np.lexsort((labels, rank))


def stratified_split(labels: np.ndarray, seed: int,
                     test_fraction: float = TEST_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Seeded class-stratified split: ``(train positions, test positions)``, each sorted.

    For each class in label order, with ``n_c`` samples: a permutation from ``numpy.random.default_rng(seed)`` (one
    generator drawn in turn by every class) puts ``round(test_fraction n_c)`` of them (halves round up) in test.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, test = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        n_test = int(np.floor(test_fraction * len(pos) + 0.5))
        perm = rng.permutation(len(pos))
        test.append(pos[perm[:n_test]])
        train.append(pos[perm[n_test:]])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _file_id(path: Path, base: Path) -> list:
    st = path.stat()
    return [os.path.relpath(path, base), st.st_size, st.st_mtime_ns]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:40] or "set"


# --------------------------------------------------------------------------- framing

@dataclass(frozen=True)
class FrameTransform:
    """Events -> frames ``(T, 2, H // pool, W // pool)``: the steps of the module docstring.

    ``frame_size`` = ``(W, H)``, the fixed frame after downsampling and before pooling. Output dtype uint8 (0/1)
    when ``binary``, else int16 counts.
    """

    frame_size: tuple[int, int]
    n_time_bins: int = 8
    time_window_us: float = 0.0
    denoise_us: float = 0.0
    downsample: float = 1.0
    pool: int = 1
    binary: bool = True

    def __post_init__(self) -> None:
        W, H = self.frame_size
        if self.pool > min(W, H):
            raise ValueError(f"pool={self.pool} is larger than the {W}x{H} frame")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        W, H = self.frame_size
        return (self.n_time_bins, 2, H // self.pool, W // self.pool)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        W, H = (int(v) for v in self.frame_size)
        T = self.n_time_bins
        if len(events) and np.any(np.diff(events["t"]) < 0):
            events = events[np.argsort(events["t"], kind="stable")]
        if self.denoise_us > 0 and len(events):
            events = Denoise(filter_time=self.denoise_us)(events)
        if self.downsample != 1 and len(events):
            events = Downsample(spatial_factor=self.downsample)(events)
        events = events[(events["x"] < W) & (events["y"] < H)]
        if len(events) == 0:
            frames = np.zeros((T, 2, H, W), np.int16)
        elif self.time_window_us > 0:
            t0 = float(events["t"][0])
            w = float(self.time_window_us)
            frames = ToFrame(sensor_size=(W, H, 2), time_window=w, start_time=t0, end_time=t0 + T * w)(events)
            if len(frames) != T:  # float rounding of tonic's slice count: trim or pad to exactly T frames
                frames = np.concatenate([frames[:T], np.zeros((max(T - len(frames), 0), 2, H, W), frames.dtype)])
        else:
            frames = ToFrame(sensor_size=(W, H, 2), n_time_bins=T)(events)
        frames = pool_frames(np.minimum(frames, 1).astype(np.uint8) if self.binary else frames.astype(np.int16),
                             self.pool)
        return np.ascontiguousarray(frames)

    def encode(self, events: np.ndarray) -> np.ndarray:
        """Frames as stored in the cache: bit-packed when binary, else the int16 counts."""
        frames = self(events)
        return np.packbits(frames.ravel()) if self.binary else frames

    def decode(self, data: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`encode`: ``(T, 2, H', W')`` frames."""
        if self.binary:
            return np.unpackbits(np.asarray(data, np.uint8), count=int(np.prod(self.shape))).reshape(self.shape)
        return np.asarray(data).reshape(self.shape)


# --------------------------------------------------------------------------- the two kinds of set

def _check_idx(idx, n: int, name: str) -> torch.Tensor:
    idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
    if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(f"{name}: batch indices must lie in [0, {n}), got {int(idx.min())}..{int(idx.max())}")
    return idx


class TensorSet:
    """A labelled set held in memory: ``x`` (N, T, C, H, W) frames or (N, D) features, ``y`` (N,) int64."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, classes: list[str], kind: str, meta: dict[str, Any],
                 n_classes: int | None = None):
        if len(x) != len(y):
            raise ValueError(f"{meta.get('name')}: {len(x)} samples but {len(y)} labels")
        self.x, self.targets = x, torch.as_tensor(y, dtype=torch.long)
        self.classes = list(classes)
        self.n_classes = int(n_classes if n_classes is not None else len(self.classes))
        self.kind = kind
        self.input_shape: tuple[int, ...] = tuple(int(s) for s in (x.shape[2:] if x.dim() == 5 else x.shape[1:]))
        self.meta = meta

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        idx = _check_idx(idx, len(self), self.meta.get("name", "data set"))
        return self.x[idx], self.targets[idx]

    def prepare(self, progress: bool = True) -> None:
        """Nothing to do: the set is in memory (here so every set can be prepared the same way)."""

    def describe(self) -> dict[str, Any]:
        return {**self.meta, "len": len(self), "input_shape": list(self.input_shape), "n_classes": self.n_classes,
                "classes": self.classes}


class FrameSet:
    """Event samples framed by ``transform``, cached on disk under ``cache_dir``; ``batch`` gives float32
    ``(B, T, C, H, W)`` frames and int64 labels. ``samples[i]`` is ``(events, label)``; ``targets`` its labels (known
    without decoding); ``sample_ids[i]`` what sample ``i`` is (file path relative to the data folder, size, mtime,
    label); ``limit > 0`` keeps the first ``limit`` samples."""

    kind = "frames"

    def __init__(self, samples: Dataset, targets: np.ndarray, classes: list[str], n_classes: int,
                 transform: FrameTransform, cache_dir: Path, meta: dict[str, Any], limit: int = 0,
                 sample_ids: list | None = None):
        self.transform = transform
        self.cache_dir = Path(cache_dir)
        self._cached = DiskCachedDataset(samples, self.cache_dir, transform=transform.encode)
        n = len(samples) if not limit else min(limit, len(samples))
        self.targets = torch.as_tensor(np.asarray(targets[:n], np.int64))
        self.sample_ids = list(sample_ids[:n]) if sample_ids is not None else None
        self.classes, self.n_classes = list(classes), int(n_classes)
        T, C, H, W = transform.shape
        self.input_shape: tuple[int, ...] = (C, H, W)
        self.meta = meta

    def __len__(self) -> int:
        return len(self.targets)

    def frames(self, i: int) -> np.ndarray:
        """Sample ``i``'s frames ``(T, C, H, W)`` (uint8 0/1 or int16 counts), from the cache or decoded now."""
        data, _ = self._cached[int(i)]
        return self.transform.decode(data)

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        idx = _check_idx(idx, len(self), self.meta.get("name", "data set"))
        x = np.zeros((len(idx), *self.transform.shape), np.float32)
        for j, i in enumerate(idx.tolist()):
            x[j] = self.frames(i)
        return torch.from_numpy(x), self.targets[idx]

    def prepare(self, progress: bool = True) -> None:
        """Decode and cache every sample now (with a progress bar) instead of during the first epoch."""
        for i in tqdm(range(len(self)), desc=f"framing {self.meta.get('name')} {self.meta.get('split')}",
                      disable=not progress, leave=False, mininterval=1.0):
            self._cached[i]

    def describe(self) -> dict[str, Any]:
        return {**self.meta, "len": len(self), "input_shape": list(self.input_shape), "n_classes": self.n_classes,
                "classes": self.classes, "frames": list(self.transform.shape), "cache": str(self.cache_dir)}


def cached_frame_set(name: str, split: str, samples: Dataset, ids: list, targets: np.ndarray, classes: list[str],
                     n_classes: int, transform: FrameTransform, cache_base: str | Path | None, meta: dict[str, Any],
                     limit: int = 0) -> FrameSet:
    """A :class:`FrameSet` cached in ``<cache_base>/frames/<name>-<split>-<key>``; ``ids[i]`` identifies sample
    ``i`` for the key (JSON-able: file path relative to the data folder, size, mtime, label)."""
    key = _digest({"version": _CACHE_VERSION, "name": name, "split": split, "transform": asdict(transform),
                   "samples": ids})
    folder = resolve_cache_dir(cache_base) / "frames" / f"{_slug(name)}-{split}-{key}"
    return FrameSet(samples, targets, classes, n_classes, transform, folder, meta, limit, ids)


# --------------------------------------------------------------------------- tonic's sets

# our name -> (tonic_sets class, (W, H) of its sensor)
TONIC_SETS = {"nmnist": ("NMNIST", (34, 34)), "dvsgesture": ("DVSGesture", (128, 128)),
              "pokerdvs": ("POKERDVS", (35, 35)), "ncaltech101": ("NCALTECH101", NCALTECH101_FRAME)}


def _pokerdvs_paths(ds) -> list[str]:
    """The .npy files in the order tonic's POKERDVS read them (it keeps arrays, not paths): the same walk."""
    out = []
    for path, _dirs, files in os.walk(os.path.join(ds.location_on_system, ds.folder_name)):
        files.sort()
        out += [os.path.join(path, f) for f in files if f.endswith("npy")]
    if len(out) != len(ds):
        raise RuntimeError(f"POKERDVS: found {len(out)} .npy files but tonic read {len(ds)}")
    return out


def open_tonic_set(name: str, root: str | Path, split: str, *, n_time_bins: int = 8, time_window_us: float = 0.0,
                   denoise_us: float = 0.0, downsample: float = 1.0, pool: int = 1, binary: bool = True,
                   width: int = 0, height: int = 0, seed: int = 0, cache_dir: str | Path | None = None,
                   limit: int = 0, meta: dict[str, Any] | None = None) -> FrameSet:
    """One split ('train' or 'test') of a tonic set (``TONIC_SETS``) under ``root`` (tonic's ``save_to``).

    N-MNIST, DVS Gesture and POKER-DVS use tonic's own train/test folders. N-Caltech101 has no split in tonic:
    :func:`stratified_split` (seeded, class-stratified, 80 / 20) makes one; its recordings vary in size (tonic shifts
    each to start at x = y = 0), so frames have a fixed size, by default ``NCALTECH101_FRAME`` = 240 x 180 (scaled by
    ``downsample``), cropped/padded at the top-left corner. ``width``/``height`` > 0 fix the frame size of any set.
    Samples are ordered by file path, then class-interleaved. Missing data: tonic_sets' FileNotFoundError naming the
    folder tonic reads and where to get the data.
    """
    if name not in TONIC_SETS:
        raise ValueError(f"unknown tonic set {name!r}; choose one of {list(TONIC_SETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"{name}: split {split!r} is unknown; this set has 'train' and 'test'")
    cls_name, sensor = TONIC_SETS[name]
    cls = getattr(tonic_sets, cls_name)
    root = Path(root).expanduser()
    ds = cls(root) if name == "ncaltech101" else cls(root, train=split == "train")
    folder = Path(ds.location_on_system) / ds.folder_name
    paths = _pokerdvs_paths(ds) if name == "pokerdvs" else [str(p) for p in ds.data]
    raw_targets = list(ds.targets)
    if name == "ncaltech101":
        classes = sorted(set(raw_targets))
        labels = np.array([classes.index(t) for t in raw_targets], np.int64)
    else:
        classes = list(cls.classes)
        labels = np.array(raw_targets, np.int64)
    by_path = np.array(sorted(range(len(paths)), key=lambda i: paths[i]), np.int64)
    split_rule = f"tonic's {ds.folder_name} folder"
    if name == "ncaltech101":
        train, test = stratified_split(labels[by_path], seed)
        by_path = by_path[train if split == "train" else test]
        split_rule = f"seeded class-stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} split (seed {seed})"
    order = by_path[interleave_by_class(labels[by_path])]
    W, H = sensor
    transform = FrameTransform((width or downsampled(W, downsample), height or downsampled(H, downsample)),
                               n_time_bins, time_window_us, denoise_us, downsample, pool, binary)
    ids = [_file_id(Path(paths[i]), folder) + [int(labels[i])] for i in order]
    meta = {"name": name, "root": str(root), "split": split, "folder": str(folder), "split_rule": split_rule,
            **(meta or {})}
    return cached_frame_set(name, split, Subset(ds, order.tolist()), ids, labels[order], classes,
                      len(classes), transform, cache_dir, meta, limit)


# --------------------------------------------------------------------------- a folder of the user's recordings

def _needs_sensor(path: Path) -> bool:
    """Whether ``path`` is a Prophesee RAW file whose header has no geometry (read_events then needs a size)."""
    if detect_format(path) not in ("evt2", "evt3"):
        return False
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    fields, _ = split_header(head if b"% end" in head else head + b"\n", path)
    return header_geometry(fields) is None


class EventFiles(Dataset):
    """``(events, label)`` of recordings read by :func:`read_events`; RAW files whose header has no geometry get
    ``raw_sensor`` (W, H), and without it an error naming the file."""

    def __init__(self, files: list[Path], labels: np.ndarray, raw_sensor: tuple[int, int] | None, hint: str = ""):
        self.files, self.labels = list(files), np.asarray(labels, np.int64)
        self.raw_sensor, self.hint = raw_sensor, hint

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int):
        path = self.files[i]
        size = None
        if _needs_sensor(path):
            if self.raw_sensor is None:
                raise EventFileError(f"{path}: RAW file without a geometry line in its header, so its sensor size is "
                                     f"unknown; {self.hint or 'pass sensor_size'}")
            size = self.raw_sensor
        return read_events(path, sensor_size=size)

    def __getitem__(self, i: int):
        return self.read(i).events, int(self.labels[i])


def _class_files(folder: Path, what: str) -> dict[str, list[Path]]:
    """{class name: its event files (sorted, searched recursively)} of the class sub-folders of ``folder``."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"{what} {folder}: no class sub-folders (expected one folder per class holding its "
                                f"recordings: {' '.join(EVENT_SUFFIXES)})")
    out = {}
    for c in classes:
        files = sorted(p for p in c.rglob("*") if p.is_file() and p.suffix.lower() in EVENT_SUFFIXES
                       and not p.name.startswith("."))
        if not files:
            raise FileNotFoundError(f"{what} {folder}: class folder {c.name}/ holds no event files "
                                    f"({' '.join(EVENT_SUFFIXES)})")
        out[c.name] = files
    return out


def _read_sensor_txt(path: Path) -> tuple[int, int]:
    parts = path.read_text().split()
    try:
        W, H = (int(v) for v in parts)
        if W < 1 or H < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"{path}: expected two positive integers 'W H' (e.g. '640 480'), "
                         f"got {' '.join(parts)!r}") from None
    return W, H


def _scan_sensors(files: EventFiles, base: Path, cache_base: str | Path | None) -> list[tuple[int, int]]:
    """Each file's sensor (W, H) as read_events reports it; cached (keyed by path, size, mtime) so a folder is
    decoded for this once."""
    ident = [[str(p.resolve())] + _file_id(p, base)[1:] for p in files.files]
    path = resolve_cache_dir(cache_base) / "sensors" / f"{_digest([ident, files.raw_sensor])}.json"
    if path.is_file():
        return [tuple(s) for s in json.loads(path.read_text())["sensors"]]
    sizes = []
    for i in tqdm(range(len(files)), desc=f"sensor sizes in {base}", leave=False, mininterval=1.0):
        sizes.append(tuple(int(v) for v in files.read(i).sensor_size[:2]))
    atomic_write_json(path, {"files": [str(p) for p in files.files], "sensors": [list(s) for s in sizes]})
    return sizes


def open_event_folder(folder: str | Path, split: str, *, n_time_bins: int = 8, time_window_us: float = 0.0,
                      denoise_us: float = 0.0, downsample: float = 1.0, pool: int = 1, binary: bool = True,
                      width: int = 0, height: int = 0, raw_sensor: tuple[int, int] | None = None, seed: int = 0,
                      cache_dir: str | Path | None = None, limit: int = 0, name: str | None = None,
                      meta: dict[str, Any] | None = None, raw_sensor_hint: str = "pass raw_sensor=(W, H)") -> FrameSet:
    """One split of a folder of recordings: ``folder/<class>/<files>`` (label = index of the class folder's name
    in sorted order; files of any format :func:`read_events` reads, mixed, by suffix ``EVENT_SUFFIXES``, searched
    recursively), split by :func:`stratified_split` (seeded, class-stratified 80 / 20); or, when ``folder`` has
    ``train/`` and ``test/`` sub-folders, ``folder/train/<class>/...`` and ``folder/test/<class>/...`` as they are
    (classes = the union of both).

    RAW files whose header has no geometry take ``raw_sensor`` (W, H), else ``folder/sensor_size.txt`` ("W H"),
    else their reading raises an error naming the file (and ``raw_sensor_hint``, the caller's way to give one). The
    frame is ``width x height`` when both are given, else the largest sensor of the folder's files (scaled by
    ``downsample``; smaller ones padded at the right/bottom), which needs each file's sensor size: read once and
    cached.
    """
    folder = Path(folder).expanduser()
    name = name or f"events:{folder}"
    if not folder.is_dir():
        raise FileNotFoundError(f"{name}: event folder {folder} does not exist")
    if split not in ("train", "test"):
        raise ValueError(f"{name}: split {split!r} is unknown; this set has 'train' and 'test'")
    txt = folder / "sensor_size.txt"
    if raw_sensor is None and txt.is_file():
        raw_sensor = _read_sensor_txt(txt)
    hint = f"write 'W H' into {txt} or {raw_sensor_hint} (e.g. 640 480 for a Prophesee Gen3 VGA sensor)"
    has_train, has_test = (folder / "train").is_dir(), (folder / "test").is_dir()
    if has_train != has_test:
        raise FileNotFoundError(f"{name}: {folder} has a {'train' if has_train else 'test'}/ sub-folder but no "
                                f"{'test' if has_train else 'train'}/ one (give both, or neither for a seeded split)")
    if has_train:
        parts = {s: _class_files(folder / s, f"{name}: split folder") for s in ("train", "test")}
        classes = sorted(set(parts["train"]) | set(parts["test"]))
        every = [f for s in ("train", "test") for c in sorted(parts[s]) for f in parts[s][c]]
        files = [f for c in sorted(parts[split]) for f in parts[split][c]]
        labels = np.array([classes.index(c) for c in sorted(parts[split]) for _ in parts[split][c]], np.int64)
        split_rule = f"the folder's {split}/ sub-folder"
    else:
        per_class = _class_files(folder, f"{name}: event folder")
        classes = sorted(per_class)
        every = [f for c in classes for f in per_class[c]]
        labels = np.array([i for i, c in enumerate(classes) for _ in per_class[c]], np.int64)
        train, test = stratified_split(labels, seed)
        keep = train if split == "train" else test
        files, labels = [every[i] for i in keep], labels[keep]
        split_rule = f"seeded class-stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} split (seed {seed})"
    order = interleave_by_class(labels)
    files, labels = [files[i] for i in order], labels[order]
    samples = EventFiles(files, labels, raw_sensor, hint)
    if width and height:
        frame = (width, height)
    else:  # over the files of both splits, so the frame size does not depend on the split
        sizes = np.array(_scan_sensors(EventFiles(every, np.zeros(len(every)), raw_sensor, hint), folder, cache_dir))
        frame = (width or downsampled(int(sizes[:, 0].max()), downsample),
                 height or downsampled(int(sizes[:, 1].max()), downsample))
    transform = FrameTransform(frame, n_time_bins, time_window_us, denoise_us, downsample, pool, binary)
    ids = [_file_id(f, folder) + [int(lab)] for f, lab in zip(files, labels)]
    meta = {"name": name, "root": str(folder), "split": split, "split_rule": split_rule,
            "raw_sensor": list(raw_sensor) if raw_sensor else None, **(meta or {})}
    return cached_frame_set(name, split, samples, ids, labels, classes, len(classes), transform, cache_dir, meta, limit)
