"""spikes.datasets: event-camera data.

Public API (names other packages rely on; keep them):

Events
- ``EventStream``: ``events`` structured array (EVENT_DTYPE: x, y int16; t int64 microseconds;
  p int8 with 1 = ON, 0 = OFF), ``sensor_size`` (W, H, 2), ``triggers`` (t, id, p 1 = rising), ``imu``, ``path``.
- ``read_events(path, sensor_size=None, format=None, *, validate=True, repair=False) -> EventStream``:
  AEDAT4, N-MNIST/N-Caltech101 ATIS .bin, Prophesee DAT, Prophesee RAW EVT 2.0 / EVT 3.0, ROS1 bags of
  event_camera_msgs/EventPacket (needs ``rosbags``). A RAW header without geometry needs ``sensor_size``.
  Bad input raises ``EventFileError`` naming the file and the problem; ``repair=True`` drops events
  outside the sensor and sorts by time instead.

Embedded sets (no download; generated on first use, cached in ``cache_dir`` or $SPIKES_CACHE or
~/.cache/spikes, atomic writes, deterministic by seed)
- ``digits_events(split="train", seed=0, cache_dir=None, transform=None)``: torch Dataset of
  (events array, label) from scikit-learn's 8x8 handwritten digits seen by a simulated DVS moving along
  N-MNIST's three saccades; ``.sensor_size`` = (34, 34, 2); 1438 train / 359 test (index % 5 == 4).
- ``digits_frames(split="train", n_time_bins=20, seed=0, cache_dir=None) -> (x, y)``: x float32
  (N, T, 2, 34, 34), 1 where a pixel had >= 1 event of that polarity (channel 0 OFF, 1 ON) in the bin
  (counts clipped to 1 = spikes), bins splitting the 300 ms sample evenly; y int64.
- ``stereo_depth_file(seed=0, cache_dir=None) -> Path``: 96x64 stereo event cameras, textured discs at
  1-3 m before a background at 6 m, 200 depth frames at 20 Hz, written in MVSEC's hdf5 layout.

Stereo depth
- ``MVSECStereo(path, split="train"|"val"|"test", *, gt_path=None, sequence=None, frames=None,
  window_s=0.05, rect_maps=None)``: (x (4, H, W) float32 counts [left ON, left OFF, right ON, right OFF]
  over the 50 ms before each depth frame, depth (H, W) float32 metres with NaN invalid). Real MVSEC:
  ``sequence="indoor_flying1|2|3"`` gives StereoSpike's split 1 (``mvsec.SPLIT1``).
- ``DSECStereo(root, sequence, *, window_us=50_000, rectify=True, frames=None)``: the same input from a DSEC
  sequence folder, with the disparity (H, W) in pixels (NaN invalid) as target.

Labelled sets through tonic, never downloading (``tonic_sets``): ``NMNIST``, ``DVSGesture``, ``POKERDVS``,
``NCALTECH101``. Transforms and collation: ``transforms`` (TimeBins, Crop, SliceByTime, tonic's ToFrame,
ToVoxelGrid, Denoise, Downsample, ..., ``collate_time_major`` -> (T, B, C, H, W), ``DiskCachedDataset``).

Labelled sets for training (``labelled``; what ``spikes.training.data.open_dataset`` returns): ``open_tonic_set``
(the four tonic sets, framed and cached on disk), ``open_event_folder`` (a folder of recordings, one sub-folder
per class), ``FrameSet`` / ``TensorSet`` (``batch(idx) -> (x, y)``), ``FrameTransform`` (events -> frames).
Tabular sets (``tabular``): ``load_split(dataset, seed) -> Split`` of scikit-learn's wine, breast_cancer, digits
(stratified, min-max scaled on the training part).
"""
from __future__ import annotations

from .dsec import DSECStereo
from .digits import DigitsEvents, digits_events, digits_frames
from .events import EVENT_DTYPE, TRIGGER_DTYPE, EventFileError, EventStream, make_events, validate_events
from .io import detect_format, read_events
from .mvsec import MVSECStereo
from .stereo_synth import stereo_depth_file

_LAZY = {"NMNIST", "DVSGesture", "POKERDVS", "NCALTECH101"}  # import tonic.datasets (slow) only when asked


def __getattr__(name: str):
    if name in _LAZY:
        from . import tonic_sets

        return getattr(tonic_sets, name)
    raise AttributeError(f"module 'spikes.datasets' has no attribute {name!r}")

__all__ = [
    "EVENT_DTYPE", "TRIGGER_DTYPE", "EventFileError", "EventStream", "make_events", "validate_events",
    "detect_format", "read_events",
    "DigitsEvents", "digits_events", "digits_frames", "stereo_depth_file", "MVSECStereo", "DSECStereo",
    "NMNIST", "DVSGesture", "POKERDVS", "NCALTECH101",
]
