"""The event container shared by all readers, datasets and transforms.

Events are a numpy structured array (tonic convention) with fields
``x`` (int16 column), ``y`` (int16 row), ``t`` (int64 microseconds) and ``p`` (int8 polarity:
1 = ON = brightness increase, 0 = OFF; signed so that tonic transforms mapping 0 -> -1, such as
ToVoxelGrid, work). ``sensor_size`` is ``(W, H, 2)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
TRIGGER_DTYPE = np.dtype([("t", np.int64), ("id", np.uint8), ("p", np.uint8)])


class EventFileError(ValueError):
    """A file (or array) cannot be read as events; the message names the file and the problem."""


def make_events(x: Any, y: Any, t: Any, p: Any) -> np.ndarray:
    """Pack columns into an :data:`EVENT_DTYPE` structured array."""
    x = np.asarray(x)
    ev = np.empty(len(x), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, np.asarray(p) != 0
    return ev


def as_events(events: np.ndarray) -> np.ndarray:
    """Convert any structured array with x, y, t, p fields (tonic's bool p, aedat's 'on') to EVENT_DTYPE."""
    names = events.dtype.names or ()
    p_name = "p" if "p" in names else "on" if "on" in names else None
    if not {"x", "y", "t"} <= set(names) or p_name is None:
        raise EventFileError(f"events need fields x, y, t, p; got {names}")
    return make_events(events["x"], events["y"], events["t"], events[p_name])


@dataclass
class EventStream:
    """Events of one recording.

    ``events``: structured array (:data:`EVENT_DTYPE`), ``sensor_size``: (W, H, 2),
    ``triggers``: external trigger edges (:data:`TRIGGER_DTYPE`: t us, id, p 1 = rising),
    ``imu``: IMU samples as the source reader gives them, ``path``: where it was read from.
    """

    events: np.ndarray
    sensor_size: tuple[int, int, int]
    triggers: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=TRIGGER_DTYPE))
    imu: np.ndarray | None = None
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.events)

    @property
    def duration_us(self) -> int:
        return int(self.events["t"][-1] - self.events["t"][0]) if len(self.events) else 0


def validate_events(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    source: str | Path = "<array>",
    *,
    allow_empty: bool = False,
    repair: bool = False,
) -> np.ndarray:
    """Check coordinates lie inside ``sensor_size`` and timestamps never go backwards.

    Raises :class:`EventFileError` naming ``source`` and the problem. With ``repair=True`` the
    documented repair is applied instead: events outside the sensor are dropped and the stream is
    stably sorted by ``t``.
    """
    W, H = int(sensor_size[0]), int(sensor_size[1])
    if len(events) == 0:
        if allow_empty:
            return events
        raise EventFileError(f"{source}: empty event stream (no events decoded)")
    outside = (events["x"] < 0) | (events["x"] >= W) | (events["y"] < 0) | (events["y"] >= H)
    if outside.any():
        if not repair:
            i = int(np.flatnonzero(outside)[0])
            raise EventFileError(
                f"{source}: {int(outside.sum())} events outside the {W}x{H} sensor, first #{i} at "
                f"x={int(events['x'][i])}, y={int(events['y'][i])} (wrong sensor_size or corrupt file; "
                "repair=True drops them)"
            )
        events = events[~outside]
    back = np.diff(events["t"]) < 0
    if back.any():
        if not repair:
            i = int(np.flatnonzero(back)[0]) + 1
            raise EventFileError(
                f"{source}: timestamps go backwards at event #{i} "
                f"({int(events['t'][i - 1])} -> {int(events['t'][i])} us; {int(back.sum())} times; "
                "repair=True sorts by time)"
            )
        events = events[np.argsort(events["t"], kind="stable")]
    return events
