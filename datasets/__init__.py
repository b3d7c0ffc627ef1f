"""spikes.datasets: event-camera data.

Public API (names other packages rely on):

- :func:`read_events(path, sensor_size=None, format=None) <spikes.datasets.io.read_events>` ->
  :class:`EventStream` (``events`` structured array x, y, t [int64 us], p [int8, 1 = ON, 0 = OFF];
  ``sensor_size`` (W, H, 2); ``triggers``; ``imu``). AEDAT4, N-MNIST .bin, Prophesee DAT, RAW EVT 2.0/3.0,
  ROS1 bags of event_camera_msgs/EventPacket.
"""
from __future__ import annotations

from .events import EVENT_DTYPE, TRIGGER_DTYPE, EventFileError, EventStream, make_events, validate_events
from .io import detect_format, read_events

__all__ = [
    "EVENT_DTYPE", "TRIGGER_DTYPE", "EventFileError", "EventStream", "make_events", "validate_events",
    "detect_format", "read_events",
]

from .digits import digits_events, digits_frames  # noqa: E402
from .mvsec import MVSECStereo  # noqa: E402
from .stereo_synth import stereo_depth_file  # noqa: E402

__all__ += ["digits_events", "digits_frames", "MVSECStereo", "stereo_depth_file"]
