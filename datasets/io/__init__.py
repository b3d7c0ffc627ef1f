"""Read event-camera recordings into an :class:`~spikes.datasets.events.EventStream`.

Formats (detected from extension, then header): AEDAT 4 (``.aedat4``, via the ``aedat`` library),
N-MNIST/N-Caltech101 ATIS ``.bin`` (via ``tonic.io``), Prophesee DAT (``.dat``), Prophesee RAW
EVT 2.0 / EVT 3.0 (``.raw``, our numpy decoders) and ROS1 bags of ``event_camera_msgs/EventPacket``
(``.bag``, needs the optional ``rosbags`` package).

Polarity ``p`` is 0/1 (1 = ON). Timestamps are int64 microseconds as the sensor stamps them (AEDAT4:
since the Unix epoch; RAW/bag: sensor clock; no re-basing). ``tonic.io`` (it loads tonic.datasets, slow) and the
optional ``rosbags`` are imported only when a file of theirs is read.
"""
from __future__ import annotations

from pathlib import Path

import aedat
import numpy as np

from ..events import EventFileError, EventStream, TRIGGER_DTYPE, as_events, make_events, validate_events
from ._header import header_geometry, split_header
from .prophesee import decode_dat, decode_evt2, decode_evt3

FORMATS = ("aedat4", "nmnist", "dat", "evt2", "evt3", "rosbag")
_EXT = {".aedat4": "aedat4", ".bin": "nmnist", ".dat": "dat", ".bag": "rosbag"}

__all__ = ["read_events", "detect_format", "FORMATS", "decode_evt2", "decode_evt3", "decode_dat"]


def detect_format(path: str | Path) -> str:
    """Format name from the extension, and for ``.raw`` from the ``% evt`` / ``% format`` header line."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext in _EXT:
        return _EXT[ext]
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"#!AER-DAT4"):
        return "aedat4"
    if head.startswith(b"#ROSBAG V2.0"):
        return "rosbag"
    if head.startswith(b"%"):
        fields, _ = split_header(head if b"% end" in head else head + b"\n", path)
        raw = _raw_version(fields)
        if raw is not None:
            return raw
        if "event2d" in fields.get("data", "").lower() or "version" in fields:
            return "dat"
    raise EventFileError(f"{path}: unknown event file format (extension {ext!r}, header {head[:32]!r}); pass format= one of {FORMATS}")


def _raw_version(fields: dict[str, str]) -> str | None:
    """'evt2' / 'evt3' from a RAW header's ``% evt 2.0`` or ``% format EVT3;...`` line, else None."""
    evt, fmt = fields.get("evt", ""), fields.get("format", "").split(";")[0].upper()
    if evt.startswith("3") or fmt == "EVT3":
        return "evt3"
    if evt.startswith("2") or fmt == "EVT2":
        return "evt2"
    return None


def _sensor(given, geometry, events, path, fmt, required=False) -> tuple[int, int, int]:
    if given is not None:
        return (int(given[0]), int(given[1]), 2)
    if geometry is not None:
        return (int(geometry[0]), int(geometry[1]), 2)
    if required:
        raise EventFileError(
            f"{path}: the {fmt} header has no geometry line; pass sensor_size=(W, H) "
            "(e.g. (640, 480) for a Prophesee Gen3 VGA sensor)"
        )
    if len(events) == 0:
        raise EventFileError(f"{path}: empty event stream and no sensor_size to describe it")
    # no geometry anywhere: the smallest sensor holding every event (documented fallback)
    return (int(events["x"].max()) + 1, int(events["y"].max()) + 1, 2)


def _read_raw(path: Path, fmt: str | None, sensor_size) -> EventStream:
    data = path.read_bytes()
    fields, start = split_header(data, path)
    fmt = fmt or _raw_version(fields)
    if fmt is None:
        raise EventFileError(f"{path}: RAW header names no EVT version ('% evt 2.0' / '% evt 3.0'); pass format=")
    decode = decode_evt3 if fmt == "evt3" else decode_evt2
    ev, tr = decode(data[start:], path)
    sensor = _sensor(sensor_size, header_geometry(fields), ev, path, fmt.upper(), required=True)
    return EventStream(ev, sensor, triggers=tr, path=path)


def _read_dat(path: Path, sensor_size) -> EventStream:
    data = path.read_bytes()
    fields, start = split_header(data, path)
    if not fields:
        raise EventFileError(f"{path}: not a Prophesee DAT file (no '%' header)")
    ev = decode_dat(data[start:], path)
    return EventStream(ev, _sensor(sensor_size, header_geometry(fields), ev, path, "DAT"), path=path)


def _read_nmnist(path: Path, sensor_size) -> EventStream:
    from tonic.io import read_mnist_file

    size = path.stat().st_size
    if size % 5:
        raise EventFileError(f"{path}: truncated ATIS .bin file ({size} bytes is not a multiple of the 5-byte event)")
    raw = read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    ev = as_events(raw)
    return EventStream(ev, _sensor(sensor_size, None, ev, path, "N-MNIST"), path=path)


def _read_aedat4(path: Path, sensor_size) -> EventStream:
    try:
        decoder = aedat.Decoder(str(path))
        streams = decoder.id_to_stream()
        ev_ids = sorted(i for i, s in streams.items() if s["type"] == "events")
        if not ev_ids:
            raise EventFileError(f"{path}: AEDAT4 file has no event stream (streams: {streams})")
        sid = ev_ids[0]
        events, imus, trig = [], [], []
        for packet in decoder:
            if packet["stream_id"] == sid and "events" in packet:
                events.append(packet["events"])
            elif "imus" in packet:
                imus.append(packet["imus"])
            elif "triggers" in packet:
                trig.append(packet["triggers"])
    except EventFileError:
        raise
    except Exception as e:  # aedat raises plain RuntimeError/OSError with terse messages
        raise EventFileError(f"{path}: cannot decode AEDAT4 ({type(e).__name__}: {e}); truncated or corrupt file?") from e
    ev = as_events(np.concatenate(events)) if events else make_events([], [], [], [])
    geometry = (streams[sid]["width"], streams[sid]["height"])
    triggers = np.empty(0, dtype=TRIGGER_DTYPE)
    if trig:
        t = np.concatenate(trig)
        triggers = np.empty(len(t), dtype=TRIGGER_DTYPE)
        # id = the AEDAT4 trigger source; sources 2 and 5 are falling edges (external signal / generator).
        # Not covered by a real file here (the DVXplorer sample has a trigger stream but no trigger packets).
        source = t["source"] if "source" in (t.dtype.names or ()) else np.zeros(len(t), np.uint8)
        triggers["t"], triggers["id"] = t["t"], source
        triggers["p"] = ~np.isin(source, (2, 5))
    return EventStream(ev, _sensor(sensor_size, geometry, ev, path, "AEDAT4"), triggers=triggers,
                       imu=np.concatenate(imus) if imus else None, path=path)


def _read_rosbag(path: Path, sensor_size, topic: str | None = None) -> EventStream:
    try:
        from rosbags.rosbag1 import Reader
        from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    except ImportError as e:
        raise ImportError("reading ROS1 bags needs the optional 'rosbags' package: pip install 'spikes[ros]'") from e
    try:
        with Reader(path) as reader:
            conns = [c for c in reader.connections if c.msgtype.endswith("EventPacket") and (topic is None or c.topic == topic)]
            if not conns:
                raise EventFileError(f"{path}: no event_camera_msgs/EventPacket topic{'' if topic is None else ' ' + topic} in the bag")
            conn = conns[0]
            store = get_typestore(Stores.ROS1_NOETIC)
            store.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
            chunks, enc, geometry = [], None, None
            for c, _, raw in reader.messages(connections=[conn]):
                msg = store.deserialize_ros1(raw, c.msgtype)
                enc = msg.encoding
                geometry = (int(msg.width), int(msg.height))
                chunks.append(np.asarray(msg.events, dtype=np.uint8))
    except EventFileError:
        raise
    except Exception as e:
        raise EventFileError(f"{path}: cannot read ROS1 bag ({type(e).__name__}: {e})") from e
    payload = np.concatenate(chunks).tobytes() if chunks else b""
    if enc == "evt3":
        ev, tr = decode_evt3(payload, path)
    elif enc == "evt2":
        ev, tr = decode_evt2(payload, path)
    else:
        raise EventFileError(f"{path}: EventPacket encoding {enc!r} not supported (evt3, evt2)")
    return EventStream(ev, _sensor(sensor_size, geometry, ev, path, "bag"), triggers=tr, path=path)


def read_events(
    path: str | Path,
    sensor_size: tuple[int, ...] | None = None,
    format: str | None = None,
    *,
    validate: bool = True,
    repair: bool = False,
) -> EventStream:
    """Read one recording.

    ``sensor_size`` (W, H[, 2]) overrides the file's geometry and is required for RAW files whose header
    has none; DAT and .bin files without geometry get the smallest sensor holding every event
    (max x + 1, max y + 1). ``format`` is one of :data:`FORMATS` (default: detected). With ``validate`` the stream is
    checked (non-empty, inside the sensor, time never decreasing) by
    :func:`~spikes.datasets.events.validate_events`; ``repair=True`` drops/sorts instead of raising.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such event file")
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: expected one of {FORMATS}")
    if fmt in ("evt2", "evt3"):
        stream = _read_raw(path, fmt, sensor_size)
    elif fmt == "dat":
        stream = _read_dat(path, sensor_size)
    elif fmt == "nmnist":
        stream = _read_nmnist(path, sensor_size)
    elif fmt == "aedat4":
        stream = _read_aedat4(path, sensor_size)
    else:
        stream = _read_rosbag(path, sensor_size)
    if validate:
        stream.events = validate_events(stream.events, stream.sensor_size, path, repair=repair)
    return stream
