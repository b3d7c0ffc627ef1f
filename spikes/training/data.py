"""Data sets by name for the trainer (:func:`open_dataset`), their ``[data]`` options, and the seeded batch order
that makes mid-epoch resume exact.

A set (:class:`LabelledSet`) gives ``batch(idx) -> (x, y)``: frame sets x float32 ``(B, T, C, H, W)`` (0/1 spikes,
or counts with ``binary = false``), tabular sets x float64 ``(B, D)``, stereo sets x ``(B, 4, H, W)`` counts and y
the depth ``(B, H, W)``; class labels y int64 ``(B,)``. The model receives frame batches time first
``(T, B, C, H, W)`` (:func:`time_first`).

Names (``DATASETS``, plus the two patterns ``events:DIR`` and ``stereo:PATH``):

- ``digits-events``: :func:`spikes.datasets.digits.digits_frames` (simulated-DVS handwritten digits, 2x34x34,
  10 classes, 1438 train / 359 test, generated from scikit-learn's digits and cached on first use): frames of
  ``n_time_bins`` equal bins of the 300 ms sample, max-pooled by ``pool``. With any of ``time_window_us``,
  ``denoise_us``, ``downsample``, ``binary = false``, ``width``, ``height`` the set's events go through the general
  framing of :mod:`spikes.datasets.labelled` instead (tonic's binning rules, so not the same frames).
- ``synthetic``: a small generated set for tests and smoke runs: class ``k`` (of 4) fires a 4x4 patch at
  position ``k`` of a 2x2 grid on a 2x12x12 sensor with probability 0.6 per pixel and step (channel
  ``k % 2``), plus background events with probability 0.02. Train and test use different seeds.
- ``nmnist``, ``dvsgesture``, ``pokerdvs``, ``ncaltech101``: tonic's sets, read from ``data_root`` in tonic's
  own layout (:data:`spikes.datasets.tonic_sets.LAYOUTS`), never downloaded, framed and cached on disk
  (:func:`spikes.datasets.labelled.open_tonic_set`: N-Caltech101 gets a seeded 80/20 class-stratified split and
  240x180 frames by default).
- ``events:DIR``: the user's recordings, one sub-folder per class (:func:`spikes.datasets.labelled.open_event_folder`;
  a relative DIR is taken under ``data_root`` when one is given).
- ``wine``, ``breast_cancer``: scikit-learn's tabular sets, :func:`spikes.datasets.tabular.load_split` (train /
  val / test, stratified, min-max scaled on train; ``seed`` is the split's random_state); ``moons``: scikit-learn's
  ``make_moons`` (1000 points, noise 0.2, 2 classes) generated from ``seed`` and split the same way.
- ``yinyang``: the Yin-Yang task (:mod:`spikes.datasets.tasks.yinyang`), generated from ``seed``: 4 features
  ``(x, y, 1 - x, 1 - y)``, 3 balanced classes, 5000 train / 1000 val / 1000 test points (disjoint draws).
- ``cue``: e-prop's evidence-accumulation task (:class:`spikes.datasets.tasks.cue.CueSet`, 40 input channels,
  2 classes, T = 2250 steps of 1 ms, loss on the recall window), generated in blocks of 64 trials, block k from
  seed ``seed * 100003 + k`` (test: ``+ 99991 + k``), in order; 200 blocks to train, 512 test trials
  (``train_limit`` / ``test_limit`` change the counts). With ``train.batch_size = 64`` the batches are those of
  ``spikes eprop cue --dt 1`` (which also sets the paper's network and shorter steps).
- ``spiral``: the generated four-arm spiral (:mod:`spikes.datasets.tasks.spiral`, 4 features: ON and OFF rates of
  the 2 coordinates; 4 classes; 2000 train, 500 val, 500 test points, each split from its own seed).
- ``seq-digits``: scikit-learn's 8x8 digits read row by row (:mod:`spikes.datasets.tasks.sequential_digits`:
  ``x (N, 8 steps, 8 pixels)``, the ``digits`` tabular set's stratified split from ``seed``; 10 classes).
- ``multisensory``: the multisensory integration task (:mod:`spikes.datasets.tasks.multisensory`: visual,
  auditory or both event streams at 9..16 Hz, "high" above 12.5 Hz; 5 channels, 70 steps of 20 ms, the loss on
  the decision period ``loss_mask``); train 6000 random trials (``train_limit``), val / test the grid of 50
  trials per modality and rate (``test_limit``: 24 x per condition); ``.modality`` and ``.rate`` per trial.
- ``oscillator``: the CPG task of the fluctuation rule (:class:`spikes.datasets.tasks.oscillator.OscillatorSet`):
  a lifetime of ``train_limit`` (default 20) segments of ``segment_steps`` zero-input steps, in order; the test
  set is one segment of 3 ``segment_steps``.
- ``memory``: a signed working-memory task of a pair (:mod:`spikes.datasets.tasks.memory`: task ``memory_task``
  = 0 (A) or 1 (B), each with its own input channel and output; the cue stays on at the amplitude ``input_drive``
  through the response window; analog inputs, or ``memory_spikes`` Poisson inputs per task and sign), generated from
  ``seed``: 1024 train / 256 test trials of 40 steps, loss on the response window.
- ``stereo-embedded``, ``stereo:PATH``: StereoSpike's depth data (:func:`spikes.models.stereospike.data.open_split`:
  the embedded synthetic scene, an MVSEC-layout file or a folder of MVSEC indoor_flying files; train/val/test).

Options that do not apply to a set (framing options of the synthetic, tabular and stereo sets) are an error when
they differ from their defaults, naming the key.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Subset

from spikes.datasets import tonic_sets
from spikes.datasets.digits import DigitsEvents, digits_events_file, digits_frames, SENSOR_SIZE as DIGITS_SENSOR
from spikes.datasets.labelled import (
    TONIC_SETS, FrameTransform, TensorSet, cached_frame_set, downsampled, open_event_folder, open_tonic_set,
    pool_frames,
)
from spikes.datasets.tabular import DATASETS as TABULAR_SETS, load_split as load_tabular_split
from spikes.datasets.tasks.cue import CueSet, CueTaskConfig
from spikes.datasets.tasks.memory import MemorySet, MemoryTaskConfig
from spikes.datasets.tasks.multisensory import (CLASSES as MULTISENSORY_CLASSES, MultisensoryConfig, decision_mask,
                                               multisensory_split)
from spikes.datasets.tasks.oscillator import OscillatorSet
from spikes.datasets.tasks.sequential_digits import sequential_digits_split
from spikes.datasets.tasks.spiral import spiral_split
from spikes.datasets.tasks.yinyang import CLASSES as YINYANG_CLASSES, yin_yang_split
from spikes.models.stereospike.data import StereoData, open_split as open_stereo_split
from spikes.options import ConfigError, check_value, option

TABULAR = TABULAR_SETS
DATASETS: tuple[str, ...] = ("digits-events", "synthetic", *TONIC_SETS, *TABULAR, "yinyang", "stereo-embedded", "cue",
                              "spiral", "oscillator", "memory", "seq-digits", "multisensory")
PATTERNS = ("events:DIR", "stereo:PATH")
SYNTHETIC_CLASSES = ["top-left", "top-right", "bottom-left", "bottom-right"]
CUE_TRIALS = {"train": 64 * 200, "test": 512}    # the cue set's default sizes
FRAMING_KEYS = ("n_time_bins", "time_window_us", "denoise_us", "downsample", "pool", "binary", "width", "height",
                "sensor_width", "sensor_height")


@dataclass(frozen=True)
class DataOptions:
    """The ``[data]`` table of a run config (besides ``dataset`` and ``root``): how samples become frames, which
    samples, where frames are cached. Every field is validated on construction (:class:`ConfigError` naming
    ``data.<key>``)."""

    n_time_bins: int = option(8, "frames per sample (T)", min=1)
    time_window_us: float = option(0.0, ">0: the n_time_bins frames last this many microseconds each, from the "
                                        "sample's first event (tonic ToFrame time_window; later events dropped); "
                                        "0: the sample's span cut into n_time_bins equal bins", min=0.0)
    denoise_us: float = option(0.0, ">0: drop events without an event at a neighbouring pixel in the previous this "
                                    "many microseconds (tonic Denoise filter_time)", min=0.0)
    downsample: float = option(1.0, "<1: scale pixel coordinates by this factor before framing (tonic Downsample "
                                    "spatial_factor)", min=0.0, min_exclusive=True, max=1.0)
    pool: int = option(1, "max-pool the frames by this factor (the e-prop demo: 2, 34x34 -> 17x17)", min=1)
    binary: bool = option(True, "clip event counts to 1 (spikes); false: counts per pixel and frame")
    width: int = option(0, "fixed frame width in pixels after downsampling, before pooling (0: the set's own; "
                           "N-Caltech101 240, events:DIR its widest sensor); wider recordings are cropped on the "
                           "right, narrower ones padded", min=0)
    height: int = option(0, "fixed frame height, as width (0: the set's own; N-Caltech101 180)", min=0)
    sensor_width: int = option(0, "events:DIR: sensor width of RAW files whose header has no geometry (0: from "
                                  "DIR/sensor_size.txt, 'W H')", min=0)
    sensor_height: int = option(0, "events:DIR: sensor height of such RAW files, as sensor_width", min=0)
    train_limit: int = option(0, "use only the first N training samples (0 = all; folder sets are ordered class by "
                                 "class in turn, so a limit keeps the classes balanced)", min=0)
    test_limit: int = option(0, "use only the first N test samples (0 = all)", min=0)
    cache_dir: str = option("", "where decoded frames are cached (\"\" = $SPIKES_CACHE or ~/.cache/spikes)")
    seed: int = option(-1, "seed of the data: generated sets (digits-events' simulated sensor, synthetic, the cue "
                           "trials, the stereo scene) and seeded splits (tabular, events:DIR, N-Caltech101); -1: "
                           "train.seed", min=-1)
    step_ms: float = option(1.0, "cue: the task's time step in ms (the paper: 1)", min=0.0, min_exclusive=True)
    block: int = option(64, "cue: training trials drawn from one seed (block k from seed * 100003 + k; the test set "
                            "is one block of test_limit trials from seed * 100003 + 99991)", min=1)
    segment_steps: int = option(1000, "oscillator: steps per segment of the lifetime (one training step)", min=1)
    memory_task: int = option(0, "memory: which task of the pair (0 = A, 1 = B: its own input channel and output)",
                              min=0, max=1)
    input_drive: float = option(0.0, "memory: the cue's amplitude through the response window (1: input-driven, "
                                     "0: held by the network's dynamics)", min=0.0, max=1.0)
    memory_spikes: int = option(0, "memory: 0 = analog input channels (rate networks); N = Poisson populations of N "
                                   "inputs per task and sign (spiking networks)", min=0)

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, check_value(f"data.{f.name}", getattr(self, f.name), f, "DataOptions"))
        if bool(self.sensor_width) != bool(self.sensor_height):
            raise ConfigError(f"DataOptions: keys 'data.sensor_width' and 'data.sensor_height' go together: give both "
                              f"or neither, got {self.sensor_width} and {self.sensor_height}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class LabelledSet(Protocol):
    """What :func:`open_dataset` returns (and what the trainer accepts in its place)."""

    input_shape: tuple[int, ...]    # per sample, no time axis: (C, H, W) or (D,)
    n_classes: int
    classes: list[str]

    def __len__(self) -> int: ...

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def describe(self) -> dict: ...


def synthetic_frames(split: str, n_time_bins: int, seed: int = 0,
                     n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``synthetic`` set (see module docstring): ``x`` float32 (N, T, 2, 12, 12), ``y`` int64 (N,)."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: expected 'train' or 'test'")
    n = n or (256 if split == "train" else 64)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    y = rng.integers(0, 4, n)
    x = (rng.random((n, n_time_bins, 2, 12, 12)) < 0.02)
    for i, k in enumerate(y):
        r, c = 2 + 6 * (k // 2), 2 + 6 * (k % 2)
        x[i, :, k % 2, r:r + 4, c:c + 4] |= rng.random((n_time_bins, 4, 4)) < 0.6
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


class StereoSet:
    """A stereo-depth split as a data set of the trainer: ``batch(idx) -> (x (B, 4, H, W), depth (B, H, W))``."""

    kind = "stereo"
    n_classes = 0
    classes: list[str] = []

    def __init__(self, data: StereoData, meta: dict[str, Any]):
        self.data, self.meta = data, meta
        self.in_channels = int(data.in_channels)
        self.input_size = tuple(int(s) for s in data.input_size)
        self.input_shape = (self.in_channels, *self.input_size)
        self.fb = data.fb                     # focal length x baseline (px m) if the data know it, else None

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.batch(idx)

    def mean_depth(self) -> float:
        return self.data.mean_depth()

    def describe(self) -> dict[str, Any]:
        return {**self.meta, "len": len(self), "input_shape": list(self.input_shape), "n_classes": 0, "classes": []}


def _refuse(name: str, options: DataOptions, keys: tuple[str, ...], why: str) -> None:
    """ConfigError naming the first of ``keys`` set away from its default."""
    defaults = DataOptions()
    for key in keys:
        if getattr(options, key) != getattr(defaults, key):
            raise ConfigError(f"key 'data.{key}' = {getattr(options, key)!r} does not apply to data set {name!r} "
                              f"({why}); leave it at {getattr(defaults, key)!r}")


def _framing(options: DataOptions) -> dict[str, Any]:
    return {k: getattr(options, k) for k in ("n_time_bins", "time_window_us", "denoise_us", "downsample", "pool",
                                             "binary", "width", "height")}


def _digits(split: str, options: DataOptions, seed: int, limit: int, meta: dict[str, Any]):
    cache = options.cache_dir or None
    classes = [str(k) for k in range(10)]
    o = options
    if not (o.time_window_us or o.denoise_us or o.downsample != 1 or not o.binary or o.width or o.height):
        x, y = digits_frames(split, n_time_bins=o.n_time_bins, seed=seed, cache_dir=cache)
        if limit:
            x, y = x[:limit], y[:limit]
        if o.pool > 1:
            x = torch.from_numpy(pool_frames(x.numpy(), o.pool))
        return TensorSet(x, y, classes, "frames", {**meta, "split_rule": "index % 5 == 4 is test"})
    events = DigitsEvents(split, seed=seed, cache_dir=cache)
    file = digits_events_file(seed, cache)
    st = file.stat()
    ids = [[file.name, st.st_size, st.st_mtime_ns, int(j), int(lab)] for j, lab in zip(events.indices, events.targets)]
    W, H = DIGITS_SENSOR[:2]
    framing = _framing(o)
    transform = FrameTransform((o.width or downsampled(W, o.downsample), o.height or downsampled(H, o.downsample)),
                               **{k: v for k, v in framing.items() if k not in ("width", "height")})
    return cached_frame_set("digits-events", split, events, ids, np.asarray(events.targets), classes, 10, transform,
                            cache, {**meta, "split_rule": "index % 5 == 4 is test"}, limit)


def open_dataset(name: str, split: str, options: DataOptions, data_root: str = "", seed: int = 0):
    """Split ``split`` ('train', 'test'; 'val' for the tabular and stereo sets) of data set ``name`` (module
    docstring) as a :class:`LabelledSet`, with ``options`` (``train_limit`` applies to 'train', ``test_limit`` to
    'test'). ``data_root``: where tonic's sets lie (their parent folder, tonic's ``save_to``), and the base of a
    relative ``events:DIR``. ``seed``: the digits set's sensor, the synthetic set's draws, the seeded splits (the
    run's ``train.seed``; ``options.seed >= 0`` takes its place).

    Nothing is ever downloaded: missing data raises one FileNotFoundError naming the folder looked for and where
    to get the data. An unknown name raises :class:`ConfigError` listing the names.
    """
    if not isinstance(options, DataOptions):
        raise TypeError(f"options must be DataOptions, got {type(options).__name__}")
    if split not in ("train", "val", "test"):
        raise ValueError(f"split {split!r} is unknown: expected 'train', 'val' or 'test'")
    if options.seed >= 0:
        seed = options.seed
    if name != "cue":
        _refuse(name, options, ("step_ms", "block"), "they set the generated cue task")
    if name != "oscillator":
        _refuse(name, options, ("segment_steps",), "it sets the oscillator task")
    if name != "memory":
        _refuse(name, options, ("memory_task", "input_drive", "memory_spikes"), "they set the memory task")
    limit = options.train_limit if split == "train" else options.test_limit if split == "test" else 0
    meta = {"name": name, "root": data_root, "split": split, "options": options.to_dict()}
    no_val = (f"data set {name!r} has no validation split ('val': the tabular and stereo sets have one; "
              "train.keep_best needs it)")
    if name in TABULAR:
        _refuse(name, options, FRAMING_KEYS, "a tabular set has features, not events")
        s = load_tabular_split(name, seed=seed)
        x, y = {"train": (s.x_train, s.y_train), "val": (s.x_val, s.y_val), "test": (s.x_test, s.y_test)}[split]
        if limit:
            x, y = x[:limit], y[:limit]
        return TensorSet(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(y, np.int64)),
                         s.classes, "tabular", {**meta, "split_rule": f"scikit-learn stratified split, "
                                                f"random_state={seed}"}, n_classes=s.n_classes)
    if name == "yinyang":
        _refuse(name, options, FRAMING_KEYS, "its samples are generated points, not events")
        x, y = yin_yang_split(split, seed)
        if limit:
            x, y = x[:limit], y[:limit]
        return TensorSet(torch.from_numpy(x), torch.from_numpy(y), YINYANG_CLASSES, "tabular",
                         {**meta, "split_rule": f"generated, streams [seed={seed}, split]"})
    if name == "stereo-embedded" or name.startswith("stereo:"):
        _refuse(name, options, FRAMING_KEYS, "stereo inputs are fixed 50 ms count windows")
        source = "embedded" if name == "stereo-embedded" else _under(name[len("stereo:"):], data_root)
        data = open_stereo_split(source, split, options.cache_dir or None, seed)
        if limit and limit < len(data):
            data = StereoData(Subset(data.dataset, range(limit)), name=data.name, fb=data.fb)
        return StereoSet(data, {**meta, "root": str(source)})
    if name == "spiral":
        _refuse(name, options, FRAMING_KEYS, "its points are generated features")
        x, y = spiral_split(split, seed)
        if limit:
            x, y = x[:limit], y[:limit]
        return TensorSet(x, y, [f"arm {k}" for k in range(4)], "tabular",
                         {**meta, "split_rule": "each split from its own seed"}, n_classes=4)
    if name == "seq-digits":
        _refuse(name, options, FRAMING_KEYS, "its rows are the steps")
        x, y = sequential_digits_split(split, seed)
        if limit:
            x, y = x[:limit], y[:limit]
        return TensorSet(torch.from_numpy(x), torch.from_numpy(y), [str(k) for k in range(10)], "sequence",
                         {**meta, "split_rule": f"the digits tabular split, random_state={seed}"})
    if name == "multisensory":
        _refuse(name, options, FRAMING_KEYS, "its trials are generated event streams")
        x, y, modality, rate = multisensory_split(split, seed, limit)
        data = TensorSet(torch.from_numpy(x), torch.from_numpy(y), MULTISENSORY_CLASSES, "sequence",
                         {**meta, "split_rule": "generated, streams [seed, split]"})
        data.loss_mask = torch.from_numpy(decision_mask(MultisensoryConfig()))
        data.modality, data.rate = modality, rate
        return data
    if name == "oscillator":
        _refuse(name, options, FRAMING_KEYS, "a lifetime of zero-input segments")
        if split == "train":
            return OscillatorSet(limit or 20, options.segment_steps, split="train")
        return OscillatorSet(1, 3 * options.segment_steps, split=split)
    if split == "val":
        raise ConfigError(no_val)
    if name == "memory":
        _refuse(name, options, FRAMING_KEYS, "its trials are generated")
        cfg = MemoryTaskConfig(task=options.memory_task, input_drive=options.input_drive,
                               spikes_per_channel=options.memory_spikes)
        return MemorySet(cfg, split, seed, n=limit)
    if name == "digits-events":
        return _digits(split, options, seed, limit, meta)
    if name == "cue":
        _refuse(name, options, FRAMING_KEYS, "its trials are generated spike trains")
        n = limit or CUE_TRIALS[split]
        block = options.block if split == "train" else n
        return CueSet(math.ceil(n / block), block, CueTaskConfig(dt=options.step_ms), seed, split, limit=n)
    if name == "synthetic":
        _refuse(name, options, ("time_window_us", "denoise_us", "downsample", "binary", "width", "height",
                                "sensor_width", "sensor_height"), "its frames are generated, not framed from events")
        x, y = synthetic_frames(split, options.n_time_bins, seed)
        if limit:
            x, y = x[:limit], y[:limit]
        if options.pool > 1:
            x = torch.from_numpy(pool_frames(x.numpy(), options.pool))
        return TensorSet(x, y, SYNTHETIC_CLASSES, "frames", {**meta, "split_rule": "separate seeds"})
    if name in TONIC_SETS:
        _refuse(name, options, ("sensor_width", "sensor_height"), "its sensor size is known")
        cls = TONIC_SETS[name][0]
        if not data_root:
            raise FileNotFoundError(
                f"data set {name!r} is read from disk in tonic's layout and needs a data root (--data-root / "
                f"data.root = ROOT): tonic reads ROOT/{tonic_sets.LAYOUTS[cls]}. Nothing is downloaded: get the data "
                f"from {tonic_sets.SOURCES[cls][0]}")
        return open_tonic_set(name, data_root, split, **_framing(options), seed=seed,
                              cache_dir=options.cache_dir or None, limit=limit, meta={"options": options.to_dict()})
    if name.startswith("events:") and len(name) > len("events:"):
        folder = _under(name[len("events:"):], data_root)
        raw = (options.sensor_width, options.sensor_height) if options.sensor_width else None
        return open_event_folder(folder, split, **_framing(options), raw_sensor=raw, seed=seed,
                                 cache_dir=options.cache_dir or None, limit=limit, name=name,
                                 meta={"options": options.to_dict()},
                                 raw_sensor_hint="set data.sensor_width and data.sensor_height")
    raise ConfigError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)}, or {' / '.join(PATTERNS)}")


def _under(path: str, data_root: str) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() or not data_root else Path(data_root).expanduser() / p)


def batch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """Sample indices of every batch of ``epoch``: a permutation that depends only on (seed, epoch).

    Written instead of a DataLoader + sampler because the order must be a pure function of the position
    for exact mid-epoch resume; a resumed run skips the batches it already did. The last batch may be short.
    """
    g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    perm = torch.randperm(n, generator=g)
    return [perm[i * batch_size:(i + 1) * batch_size] for i in range(math.ceil(n / batch_size))]


def time_first(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, ...)`` -> ``(T, B, ...)`` (contiguous)."""
    return x.transpose(0, 1).contiguous()
