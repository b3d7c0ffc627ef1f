"""Readers against the real recordings of ../shared/data/events (counts from its MANIFEST.md, found by
independent readers: tonic.io, aedat, faery, expelliarmus, rosbags) and against bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikes.datasets import EventFileError, read_events
from spikes.datasets.events import make_events, validate_events
from spikes.datasets.io import decode_evt2, decode_evt3, detect_format

# file, sensor_size passed, n events, t min, t max, n ON (None = not in the manifest), sensor
MANIFEST = [
    ("nmnist/sample_nmnist.bin", None, 4325, 654, 311175, None, (34, 34)),
    ("ncars/sample_ncars.dat", None, 2009, 0, 99952, None, None),
    ("ncars/NCARS_obj_004397_td.dat", None, 4407, 0, 99937, None, None),
    ("prophesee_evt2/faery_evt2.raw", (640, 480), 521252, 913716224, 913812095, 185861, (640, 480)),
    ("prophesee_evt2/expelliarmus_evt2_sample.raw", (640, 480), 539481, 1317888, 1367888, 367855, (640, 480)),
    ("prophesee_evt3/expelliarmus_evt3_sample.raw", (1280, 720), 219596, 11718656, 11727467, 115532, (1280, 720)),
    ("ros1_evt3/test_events_1_extracted.raw", None, 343474, 7139845, 9218023, 125183, (640, 480)),
]


@pytest.mark.parametrize("name,size,n,t0,t1,n_on,sensor", MANIFEST, ids=[m[0] for m in MANIFEST])
def test_manifest_counts(shared_events: Path, name, size, n, t0, t1, n_on, sensor):
    s = read_events(shared_events / name, sensor_size=size)
    ev = s.events
    assert ev.dtype.names == ("x", "y", "t", "p") and ev["t"].dtype == np.int64
    assert len(ev) == n
    assert (int(ev["t"].min()), int(ev["t"].max())) == (t0, t1)
    assert np.all(np.diff(ev["t"]) >= 0)
    assert set(np.unique(ev["p"])) <= {0, 1}
    if n_on is not None:
        assert int(ev["p"].sum()) == n_on
    if sensor is not None:
        assert s.sensor_size == (*sensor, 2)
    assert ev["x"].max() < s.sensor_size[0] and ev["y"].max() < s.sensor_size[1]


def test_nmnist_coordinates(shared_events):
    ev = read_events(shared_events / "nmnist/sample_nmnist.bin").events
    assert ev["x"].max() == 33 and ev["y"].max() == 33


def test_aedat4_dvxplorer(shared_events):
    s = read_events(shared_events / "dvxplorer/sample.aedat4")
    ev = s.events
    assert len(ev) == 111954 and s.sensor_size == (320, 240, 2)
    assert abs((ev["t"][-1] - ev["t"][0]) / 1e6 - 0.590) < 0.0005
    assert round(100 * ev["p"].mean()) == 49
    assert s.imu is not None and len(s.imu) == 475


def test_rosbag_matches_manifest_and_extracted_raw(shared_events):
    bag = read_events(shared_events / "ros1_evt3/test_events_1.bag")
    raw = read_events(shared_events / "ros1_evt3/test_events_1_extracted.raw")
    ev = bag.events
    assert bag.sensor_size == (640, 480, 2)
    assert len(ev) == 343474 and int(ev["p"].sum()) == 125183 and int((ev["p"] == 0).sum()) == 218291
    assert np.array_equal(ev, raw.events)
    assert abs((ev["t"][-1] - ev["t"][0]) / 1e6 - 2.08) < 0.005
    tr = bag.triggers
    # MANIFEST: 2,078 rising plus 2,078 falling edges. The stream alternates rising/falling and ends on
    # a rising edge whose falling edge lies after the recording: 2,078 complete pulses, 1 open one.
    assert np.all(np.diff(tr["p"].astype(int)) != 0) and tr["p"][0] == 1 and tr["p"][-1] == 1
    assert int((tr["p"] == 0).sum()) == 2078 and int(tr["p"].sum()) == 2078 + 1
    assert np.array_equal(tr, raw.triggers)
    assert np.all(np.diff(tr["t"]) == 500)  # a 1 kHz square wave, edges 500 us apart


def test_format_detection(shared_events):
    assert detect_format(shared_events / "prophesee_evt3/expelliarmus_evt3_sample.raw") == "evt3"
    assert detect_format(shared_events / "prophesee_evt2/faery_evt2.raw") == "evt2"
    assert detect_format(shared_events / "ncars/sample_ncars.dat") == "dat"


def test_evt2_without_geometry_needs_sensor_size(shared_events):
    path = shared_events / "prophesee_evt2/faery_evt2.raw"
    with pytest.raises(EventFileError, match=r"faery_evt2.raw.*no geometry.*sensor_size"):
        read_events(path)


# --- hand-built words: the decoders against the format specification -------------------------------

def _evt3(*words: int) -> bytes:
    return np.array(words, dtype="<u2").tobytes()


def test_evt3_hand_built_words():
    data = _evt3(
        0x8000 | 5,  # TIME_HIGH 5
        0x6000 | 7,  # TIME_LOW 7  -> t = 5*4096 + 7
        0x0000 | 10,  # ADDR_Y 10
        0x2000 | (1 << 11) | 3,  # ADDR_X ON x=3
        0x3000 | 100,  # VECT_BASE_X OFF x=100
        0x4000 | 0b100000000101,  # VECT_12 -> x 100, 102, 111
        0x5000 | 0b10000001,  # VECT_8 -> x 112, 119
        0xA000 | (2 << 8) | 1,  # EXT_TRIGGER id 2 rising
        0x8000 | 0,  # TIME_HIGH wraps to 0 -> t = 2**24
        0x2000 | 4,  # ADDR_X OFF x=4
    )
    ev, tr = decode_evt3(data)
    t = 5 * 4096 + 7
    assert ev["x"].tolist() == [3, 100, 102, 111, 112, 119, 4]
    assert ev["y"].tolist() == [10] * 7
    assert ev["p"].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert ev["t"].tolist() == [t] * 6 + [2**24]
    assert tr.tolist() == [(t, 2, 1)]
    # decoding one word at a time (state carried across chunks) gives the same
    ev1, tr1 = decode_evt3(data, chunk_words=1)
    assert np.array_equal(ev1, ev) and np.array_equal(tr1, tr)


@pytest.mark.parametrize("name,size", [("prophesee_evt3/expelliarmus_evt3_sample.raw", (1280, 720)),
                                       ("ros1_evt3/test_events_1_extracted.raw", None),
                                       ("prophesee_evt2/expelliarmus_evt2_sample.raw", (640, 480))])
def test_chunked_decoding_equals_whole(shared_events, name, size):
    from spikes.datasets.io._header import split_header

    data = (shared_events / name).read_bytes()
    _, start = split_header(data, name)
    decode = decode_evt3 if "evt3" in name else decode_evt2
    whole = decode(data[start:])
    for chunk in (4097, 50_021):
        ev, tr = decode(data[start:], chunk_words=chunk)
        assert np.array_equal(ev, whole[0]) and np.array_equal(tr, whole[1])


def test_evt2_hand_built_words():
    words = [
        (0x8 << 28) | 1000,  # TIME_HIGH
        (0x1 << 28) | (5 << 22) | (17 << 11) | 9,  # ON x=17 y=9 t_low=5
        (0x0 << 28) | (6 << 22) | (639 << 11) | 479,  # OFF
        (0xA << 28) | (7 << 22) | (3 << 8) | 0,  # trigger id 3 falling
    ]
    ev, tr = decode_evt2(np.array(words, dtype="<u4").tobytes())
    assert ev.tolist() == [(17, 9, 1000 * 64 + 5, 1), (639, 479, 1000 * 64 + 6, 0)]
    assert tr.tolist() == [(1000 * 64 + 7, 3, 0)]


# --- bad input ---------------------------------------------------------------------------------------

def test_truncated_raw(tmp_path, shared_events):
    src = (shared_events / "ros1_evt3/test_events_1_extracted.raw").read_bytes()
    bad = tmp_path / "cut.raw"
    start = src.index(b"% end\n") + 6
    bad.write_bytes(src[: start + 2 * 5000 + 1])  # half a 16-bit word at the end
    with pytest.raises(EventFileError, match=r"cut.raw.*truncated EVT 3.0"):
        read_events(bad)


def test_truncated_nmnist_and_dat(tmp_path, shared_events):
    bad = tmp_path / "cut.bin"
    bad.write_bytes((shared_events / "nmnist/sample_nmnist.bin").read_bytes()[:1003])
    with pytest.raises(EventFileError, match=r"cut.bin.*truncated"):
        read_events(bad)
    bad = tmp_path / "cut.dat"
    bad.write_bytes((shared_events / "ncars/sample_ncars.dat").read_bytes()[:1003])
    with pytest.raises(EventFileError, match=r"cut.dat.*truncated"):
        read_events(bad)


def test_corrupt_aedat4(tmp_path, shared_events):
    src = (shared_events / "dvxplorer/sample.aedat4").read_bytes()
    bad = tmp_path / "cut.aedat4"
    bad.write_bytes(src[: len(src) // 3])
    with pytest.raises(EventFileError, match=r"cut.aedat4"):
        read_events(bad)


def test_wrong_format(tmp_path, shared_events):
    # EVT 2.0 words read as EVT 3.0 are mostly unknown word types
    with pytest.raises(EventFileError, match=r"faery_evt2.raw.*not EVT 3.0"):
        read_events(shared_events / "prophesee_evt2/faery_evt2.raw", sensor_size=(640, 480), format="evt3")
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(EventFileError, match=r"notes.txt.*unknown event file format"):
        read_events(junk)


def test_empty_stream(tmp_path):
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"% evt 3.0\n% geometry 640x480\n% end\n")
    with pytest.raises(EventFileError, match=r"empty.raw.*empty event stream"):
        read_events(empty)


def test_outside_sensor_and_backwards(tmp_path):
    words = [(0x8 << 28) | 10, (0x1 << 28) | (1 << 22) | (700 << 11) | 5]
    f = tmp_path / "wide.raw"
    f.write_bytes(b"% evt 2.0\n% end\n" + np.array(words, dtype="<u4").tobytes())
    with pytest.raises(EventFileError, match=r"wide.raw.*outside the 640x480 sensor.*x=700"):
        read_events(f, sensor_size=(640, 480))
    ev = make_events([1, 2, 3], [0, 0, 0], [10, 30, 20], [1, 0, 1])
    with pytest.raises(EventFileError, match=r"mine.*backwards at event #2 \(30 -> 20 us"):
        validate_events(ev, (4, 4, 2), "mine")
    fixed = validate_events(ev, (4, 4, 2), "mine", repair=True)
    assert fixed["t"].tolist() == [10, 20, 30] and fixed["x"].tolist() == [1, 3, 2]
    ev = make_events([1, 9], [0, 0], [1, 2], [1, 1])
    assert validate_events(ev, (4, 4, 2), repair=True)["x"].tolist() == [1]
