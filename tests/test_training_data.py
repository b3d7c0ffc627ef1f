"""open_dataset on real files: N-MNIST and DVS Gesture trees in tonic's layouts, a folder of mixed-format real
recordings, the embedded sets; frames checked against numpy binning written here from the formats' definitions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import tonic.datasets.nmnist

from spikes.datasets import read_events
from spikes.datasets.digits import digits_frames
from spikes.options import ConfigError, build_options
from spikes.training.data import DATASETS, DataOptions, open_dataset, synthetic_frames

from fixtures_events import (
    DVS_LABELS, DVS_TEST_USERS, DVS_TRAIN_USERS, EVENTS_DIR_FILES, EVENTS_DIR_RAW_SENSOR, NCALTECH_CLASSES,
    NMNIST_CLASSES, NMNIST_TEST_PER_CLASS, NMNIST_TRAIN_PER_CLASS, POKER_CLASSES, SHARED_EVENTS, dvsgesture_sample,
    encode_atis, make_dvsgesture_tree, make_events_dir, make_ncaltech101_tree, make_nmnist_tree, make_pokerdvs_tree,
    ncaltech_sample, nmnist_sample, pokerdvs_sample, require_shared,
)


@pytest.fixture
def frame_cache(tmp_path, monkeypatch) -> Path:
    """Frames (and sensor scans) cached under tmp_path, not in the user's cache (the digits set keeps its own)."""
    monkeypatch.setenv("SPIKES_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def parse_atis(path: Path) -> tuple[np.ndarray, ...]:
    """N-MNIST's 40-bit events straight from the bytes (independent of tonic and of read_events)."""
    raw = np.fromfile(path, np.uint8).reshape(-1, 5).astype(np.int64)
    assert not (raw[:, 1] == 240).any()          # no timestamp-overflow events in these files
    t = ((raw[:, 2] & 127) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    return raw[:, 0], raw[:, 1], t, raw[:, 2] >> 7


def bins_by_hand(x, y, t, p, T: int, W: int, H: int, window: float = 0.0) -> np.ndarray:
    """(T, 2, H, W) counts of the events inside the W x H frame: frame k = [t0 + k w, t0 + (k + 1) w) with t0 their
    first time and w = floor((t_last - t0) / T), or the window."""
    x, y, t, p = (np.asarray(a, np.int64) for a in (x, y, t, p))
    inside = (x < W) & (y < H)
    x, y, t, p = x[inside], y[inside], t[inside], p[inside]
    t0 = t.min()
    k = (t - t0) // (window or (t.max() - t0) // T)
    keep = k < T
    out = np.zeros((T, 2, H, W), np.int64)
    np.add.at(out, (k[keep], p[keep], y[keep], x[keep]), 1)
    return out


def pool_by_hand(a: np.ndarray, k: int) -> np.ndarray:
    return F.max_pool2d(torch.from_numpy(a.astype(np.float32)).flatten(0, -3)[:, None], k).reshape(
        *a.shape[:-2], a.shape[-2] // k, a.shape[-1] // k).numpy()


# --------------------------------------------------------------------------- N-MNIST in tonic's layout

def test_atis_encoder_round_trips_through_read_events(tmp_path):
    x, y, t, p = nmnist_sample(2, 0)
    (tmp_path / "a.bin").write_bytes(encode_atis(x, y, t, p))
    ev = read_events(tmp_path / "a.bin").events
    assert np.array_equal(ev["x"], x) and np.array_equal(ev["y"], y)
    assert np.array_equal(ev["t"], t) and np.array_equal(ev["p"], p)


@pytest.mark.usefixtures("frame_cache")
def test_nmnist_tree_lengths_classes_and_frames_by_hand(tmp_path):
    root = make_nmnist_tree(tmp_path / "data")
    train = open_dataset("nmnist", "train", DataOptions(n_time_bins=5, binary=False), str(root))
    test = open_dataset("nmnist", "test", DataOptions(n_time_bins=5), str(root))
    assert len(train) == len(NMNIST_CLASSES) * NMNIST_TRAIN_PER_CLASS + 1
    assert len(test) == len(NMNIST_CLASSES) * NMNIST_TEST_PER_CLASS
    assert train.n_classes == 10 and train.classes[0] == "0 - zero" and train.input_shape == (2, 34, 34)
    # classes take turns (so a limit keeps them balanced); the real file is Train/0/00000.bin, first of class 0
    assert train.targets.tolist() == [0, 1, 2, 0, 1, 2, 0] and test.targets.tolist() == [0, 1, 2]
    assert train.sample_ids[0][0] == "0/00000.bin"
    x, y = train.batch(torch.arange(len(train)))
    assert x.dtype == torch.float32 and x.shape == (7, 5, 2, 34, 34) and y.dtype == torch.int64
    assert torch.equal(y, train.targets)
    expect = bins_by_hand(*parse_atis(SHARED_EVENTS / "nmnist/sample_nmnist.bin"), T=5, W=34, H=34)
    assert expect.sum() > 4000 and np.array_equal(x[0].numpy(), expect)
    for i, (rel, *_rest) in enumerate(train.sample_ids[1:3], 1):    # generated samples 1/00001.bin, 2/00001.bin
        assert rel == f"{i}/00001.bin"
        assert np.array_equal(x[i].numpy(), bins_by_hand(*nmnist_sample(i, 0), T=5, W=34, H=34))
    # binary frames pooled 2x2 (the e-prop demo's 17x17), and a limit
    s = open_dataset("nmnist", "train", DataOptions(n_time_bins=5, pool=2, train_limit=4), str(root))
    assert len(s) == 4 and s.input_shape == (2, 17, 17)
    assert np.array_equal(s.batch([0])[0][0].numpy(), pool_by_hand(np.minimum(expect, 1), 2))
    d = s.describe()
    assert d["name"] == "nmnist" and d["len"] == 4 and d["input_shape"] == [2, 17, 17] and d["n_classes"] == 10
    assert d["options"]["pool"] == 2 and d["split"] == "train" and d["root"] == str(root)
    assert json.loads(json.dumps(d)) == d


@pytest.mark.usefixtures("frame_cache")
def test_nmnist_time_window_and_denoise_by_hand(tmp_path):
    root = make_nmnist_tree(tmp_path / "data")
    x, y, t, p = parse_atis(SHARED_EVENTS / "nmnist/sample_nmnist.bin")
    s = open_dataset("nmnist", "train", DataOptions(n_time_bins=4, time_window_us=50_000, binary=False), str(root))
    got = s.batch([0])[0][0].numpy()
    expect = bins_by_hand(x, y, t, p, T=4, W=34, H=34, window=50_000)
    assert np.array_equal(got, expect) and expect.sum() < len(t)     # 4 x 50 ms covers only part of the 311 ms
    # Denoise, tonic's rule: keep an event if one of its 4 neighbours (inside the events' bounding box) fired less
    # than f us before it; a pixel that never fired counts as having fired at t = 0
    f = 5000
    W, H = x.max() + 1, y.max() + 1
    last, keep = {}, np.zeros(len(t), bool)
    for i in range(len(t)):
        last[x[i], y[i]] = t[i]
        keep[i] = any(0 <= x[i] + dx < W and 0 <= y[i] + dy < H and last.get((x[i] + dx, y[i] + dy), 0) + f > t[i]
                      for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)))
    assert 0 < keep.sum() < len(t)
    s = open_dataset("nmnist", "train", DataOptions(n_time_bins=4, denoise_us=f, binary=False), str(root))
    expect = bins_by_hand(x[keep], y[keep], t[keep], p[keep], T=4, W=34, H=34)
    assert np.array_equal(s.batch([0])[0][0].numpy(), expect)


def test_nmnist_cache_written_once_then_read(tmp_path, monkeypatch, frame_cache):
    root = make_nmnist_tree(tmp_path / "data")
    calls = []
    real = tonic.datasets.nmnist.read_mnist_file
    monkeypatch.setattr(tonic.datasets.nmnist, "read_mnist_file", lambda *a, **k: calls.append(1) or real(*a, **k))
    s = open_dataset("nmnist", "train", DataOptions(), str(root))
    assert not list(s.cache_dir.glob("*.npz"))
    x1, _ = s.batch(torch.arange(len(s)))
    assert len(calls) == len(s) == len(list(s.cache_dir.glob("*.npz")))
    assert s.cache_dir.is_relative_to(frame_cache)
    x2, _ = open_dataset("nmnist", "train", DataOptions(), str(root)).batch(torch.arange(len(s)))
    assert len(calls) == len(s) and torch.equal(x1, x2)              # second pass: from the disk cache
    # another framing gets its own cache folder (a stale cache is never read)
    s3 = open_dataset("nmnist", "train", DataOptions(n_time_bins=3), str(root))
    assert s3.cache_dir != s.cache_dir and s3.batch([0])[0].shape == (1, 3, 2, 34, 34) and len(calls) == len(s) + 1


@pytest.mark.usefixtures("frame_cache")
def test_missing_data_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere" / "NMNIST" / "Train") + ".*garrickorchard"):
        open_dataset("nmnist", "train", DataOptions(), str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"data root.*ROOT/NMNIST/Train"):
        open_dataset("nmnist", "train", DataOptions())
    root = make_nmnist_tree(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match=r"holds Train/ itself: pass its parent"):
        open_dataset("nmnist", "train", DataOptions(), str(root / "NMNIST"))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "data" / "DVSGesture" / "ibmGestureTest")):
        open_dataset("dvsgesture", "test", DataOptions(), str(root))
    with pytest.raises(FileNotFoundError, match=r"no \.bin files under " + str(root / "NCALTECH101") + r"\. Nothing"):
        open_dataset("ncaltech101", "test", DataOptions(), str(root))


# --------------------------------------------------------------------------- DVS Gesture in tonic's layout

@pytest.mark.usefixtures("frame_cache")
def test_dvsgesture_tree(tmp_path):
    root = make_dvsgesture_tree(tmp_path / "data")
    train = open_dataset("dvsgesture", "train", DataOptions(n_time_bins=6, binary=False), str(root))
    test = open_dataset("dvsgesture", "test", DataOptions(n_time_bins=6, pool=4), str(root))
    assert len(train) == len(DVS_TRAIN_USERS) * len(DVS_LABELS) and len(test) == len(DVS_TEST_USERS) * len(DVS_LABELS)
    assert train.n_classes == 11 and train.classes[10] == "Other gestures"
    assert train.input_shape == (2, 128, 128) and test.input_shape == (2, 32, 32)
    assert train.targets.tolist() == [0, 3, 10, 0, 3, 10]
    x, y = train.batch(torch.arange(len(train)))
    for i, (rel, *_rest) in enumerate(train.sample_ids):
        user, label = rel.split("/")[0], int(rel.split("/")[1][:-4])
        assert label == y[i]
        a = dvsgesture_sample(user, label)
        assert np.array_equal(x[i].numpy(), bins_by_hand(a[:, 0], a[:, 1], a[:, 3] * 1000, a[:, 2], 6, 128, 128))
    a = dvsgesture_sample(DVS_TEST_USERS[0], test.targets[1].item())
    expect = np.minimum(bins_by_hand(a[:, 0], a[:, 1], a[:, 3] * 1000, a[:, 2], 6, 128, 128), 1)
    assert np.array_equal(test.batch([1])[0][0].numpy(), pool_by_hand(expect, 4))


@pytest.mark.usefixtures("frame_cache")
def test_ncaltech101_seeded_split_and_fixed_frame(tmp_path):
    root = make_ncaltech101_tree(tmp_path / "data")
    opts = DataOptions(n_time_bins=3, binary=False)
    train, test = (open_dataset("ncaltech101", s, opts, str(root), seed=0) for s in ("train", "test"))
    assert train.classes == list(NCALTECH_CLASSES) and train.n_classes == 2
    assert len(train) == 8 and len(test) == 2 and test.targets.tolist() == [0, 1]   # 1 of 5 per class to test
    assert train.input_shape == (2, 180, 240)
    names = [r for r, *_ in train.sample_ids + test.sample_ids]
    assert sorted(names) == sorted(f"Caltech101/{c}/image_{k + 1:04d}.bin" for c in NCALTECH_CLASSES for k in range(5))
    other = {tuple(r for r, *_ in open_dataset("ncaltech101", "test", opts, str(root), seed=s).sample_ids)
             for s in range(5)}
    assert len(other) > 1                                                           # the split follows the seed
    x, _ = train.batch(torch.arange(len(train)))
    for i, (rel, *_rest) in enumerate(train.sample_ids):
        cls, k = rel.split("/")[1], int(rel[-8:-4]) - 1
        ex, ey, et, ep = ncaltech_sample(cls, k)
        expect = bins_by_hand(ex - ex.min(), ey - ey.min(), et, ep, 3, 240, 180)    # tonic's shift to 0, then crop
        assert np.array_equal(x[i].numpy(), expect), rel
    assert open_dataset("ncaltech101", "test", DataOptions(downsample=0.5), str(root)).input_shape == (2, 90, 120)


@pytest.mark.usefixtures("frame_cache")
def test_pokerdvs_tree(tmp_path):
    root = make_pokerdvs_tree(tmp_path / "data")
    train = open_dataset("pokerdvs", "train", DataOptions(n_time_bins=2, binary=False), str(root))
    assert len(train) == 8 and train.classes == list(POKER_CLASSES) and train.input_shape == (2, 35, 35)
    assert train.targets.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    x, y = train.batch(torch.arange(8))
    for i, (rel, *_rest) in enumerate(train.sample_ids):
        a = pokerdvs_sample(rel.split("/")[0], int(rel[-5]))
        assert POKER_CLASSES[int(y[i])] == rel.split("/")[0]
        assert np.array_equal(x[i].numpy(), bins_by_hand(a[:, 1], a[:, 2], a[:, 0], a[:, 3], 2, 35, 35))


# --------------------------------------------------------------------------- events:DIR, mixed real formats

def _expected_events_dir_frame(path: Path, T: int, factor: float, W: int, H: int, sensor=None) -> np.ndarray:
    ev = read_events(path, sensor_size=sensor).events
    x, y = (np.floor(ev["x"] * factor)).astype(np.int64), (np.floor(ev["y"] * factor)).astype(np.int64)
    return np.minimum(bins_by_hand(x, y, ev["t"], ev["p"], T, W, H), 1)


@pytest.mark.usefixtures("frame_cache")
def test_events_dir_mixed_formats(tmp_path):
    folder = make_events_dir(tmp_path)
    opts = DataOptions(n_time_bins=4, downsample=0.125)
    train = open_dataset(f"events:{folder}", "train", opts)
    test = open_dataset(f"events:{folder}", "test", opts)
    assert train.classes == test.classes == ["a", "b"] and train.n_classes == 2
    assert len(train) == 4 and len(test) == 2                     # 3 files per class: 1 to test (seeded 80/20)
    assert sorted(train.targets.tolist()) == [0, 0, 1, 1] and test.targets.tolist() == [0, 1]
    # the frame is the largest sensor of the folder (640 x 480, EVT2/EVT3), downsampled 1/8: 80 x 60
    assert train.input_shape == test.input_shape == (2, 60, 80)
    names = {rel for rel, *_ in train.sample_ids + test.sample_ids}
    assert names == {f"{c}/{n}" for c, files in EVENTS_DIR_FILES.items() for n, _ in files}
    x, y = train.batch(torch.arange(len(train)))
    assert x.shape == (4, 4, 2, 60, 80) and torch.equal(y, train.targets)
    for i, (rel, *_rest) in enumerate(train.sample_ids):
        sensor = EVENTS_DIR_RAW_SENSOR if rel == "b/b3.raw" else None
        expect = _expected_events_dir_frame(folder / rel, 4, 0.125, 80, 60, sensor)
        assert expect.sum() > 0 and np.array_equal(x[i].numpy(), expect), rel
    # full resolution, and the same split for the same seed, another one for another seed
    assert open_dataset(f"events:{folder}", "test", DataOptions(n_time_bins=2)).input_shape == (2, 480, 640)
    again = open_dataset(f"events:{folder}", "test", opts)
    assert again.sample_ids == test.sample_ids
    splits = {tuple(r for r, *_ in open_dataset(f"events:{folder}", "test", opts, seed=s).sample_ids)
              for s in range(6)}
    assert len(splits) > 1
    # a relative DIR is taken under data_root
    assert len(open_dataset("events:events", "train", opts, data_root=str(tmp_path))) == 4


@pytest.mark.usefixtures("frame_cache")
def test_events_dir_train_test_folders_and_errors(tmp_path):
    shared = require_shared()
    folder = tmp_path / "mine"
    for split, cls, name, rel in (("train", "car", "c.dat", "ncars/sample_ncars.dat"),
                                  ("train", "car", "d.dat", "ncars/NCARS_obj_004397_td.dat"),
                                  ("train", "digit", "n.bin", "nmnist/sample_nmnist.bin"),
                                  ("test", "digit", "n2.bin", "nmnist/sample_nmnist.bin"),
                                  ("test", "scene", "s.aedat4", "dvxplorer/sample.aedat4")):
        (folder / split / cls).mkdir(parents=True, exist_ok=True)
        (folder / split / cls / name).symlink_to(shared / rel)
    opts = DataOptions(n_time_bins=2, width=40, height=30)
    train, test = (open_dataset(f"events:{folder}", s, opts) for s in ("train", "test"))
    assert train.classes == test.classes == ["car", "digit", "scene"]
    assert len(train) == 3 and len(test) == 2 and sorted(test.targets.tolist()) == [1, 2]
    assert train.input_shape == (2, 30, 40)                        # width/height fix the frame: crop
    i = [r for r, *_ in test.sample_ids].index("test/digit/n2.bin")
    expect = _expected_events_dir_frame(shared / "nmnist/sample_nmnist.bin", 2, 1.0, 40, 30)
    assert np.array_equal(test.batch([i])[0][0].numpy(), expect)

    # a RAW file without geometry and no sensor size anywhere: the error names the file and the two ways out
    bare = make_events_dir(tmp_path / "bare", sensor_txt=False)
    with pytest.raises(ValueError, match=r"b3\.raw: RAW file without a geometry line.*"
                                         r"sensor_size\.txt or set data\.sensor_width"):
        open_dataset(f"events:{bare}", "train", DataOptions())
    s = open_dataset(f"events:{bare}", "train", DataOptions(sensor_width=640, sensor_height=480, downsample=0.125))
    assert s.input_shape == (2, 60, 80)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'empty'}: no class sub-folders"):
        open_dataset(f"events:{tmp_path / 'empty'}", "train", DataOptions())
    (tmp_path / "nofiles" / "a").mkdir(parents=True)
    (tmp_path / "nofiles" / "a" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nofiles'}: class folder a/ holds no event files"):
        open_dataset(f"events:{tmp_path / 'nofiles'}", "train", DataOptions())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_dataset(f"events:{tmp_path / 'absent'}", "train", DataOptions())


# --------------------------------------------------------------------------- embedded sets, tabular, options

def test_digits_and_synthetic_frames_unchanged():
    s = open_dataset("digits-events", "test", DataOptions(n_time_bins=6, test_limit=50))
    x0, y0 = digits_frames("test", n_time_bins=6, seed=0)
    x, y = s.batch(torch.arange(len(s)))
    assert len(s) == 50 and torch.equal(x, x0[:50]) and torch.equal(y, y0[:50]) and s.input_shape == (2, 34, 34)
    pooled = open_dataset("digits-events", "test", DataOptions(n_time_bins=6, pool=2, test_limit=50))
    assert torch.equal(pooled.batch(torch.arange(50))[0], F.max_pool2d(x0[:50].flatten(0, 1), 2).view(50, 6, 2, 17, 17))
    s = open_dataset("synthetic", "train", DataOptions(n_time_bins=5), seed=3)
    xs, ys = s.batch(torch.arange(len(s)))
    x1, y1 = synthetic_frames("train", 5, seed=3)
    assert torch.equal(xs, x1) and torch.equal(ys, y1)
    assert open_dataset("synthetic", "test", DataOptions(pool=2)).input_shape == (2, 6, 6)
    with pytest.raises(ValueError, match="pool=13 is larger than the 12x12 frame"):
        open_dataset("synthetic", "test", DataOptions(pool=13))


def test_tabular_split_is_scikit_learns():
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    x, y = load_wine(return_X_y=True)
    _, x_te, _, y_te = train_test_split(x, y, test_size=0.25, stratify=y, random_state=1)
    s = open_dataset("wine", "test", DataOptions(), seed=1)
    xb, yb = s.batch(torch.arange(len(s)))
    assert len(s) == len(y_te) and np.array_equal(yb.numpy(), y_te) and xb.dtype == torch.float64
    assert s.input_shape == (13,) and s.n_classes == 3 and s.kind == "tabular"
    assert s.describe()["classes"] == ["class_0", "class_1", "class_2"] and json.dumps(s.describe())
    # min-max scaled on the training part: the test part's order of values per feature is x_te's
    assert np.array_equal(np.argsort(xb.numpy()[:, 0], kind="stable"), np.argsort(x_te[:, 0], kind="stable"))
    assert len(open_dataset("breast_cancer", "val", DataOptions())) > 0
    with pytest.raises(ConfigError, match=r"data\.pool.*wine"):
        open_dataset("wine", "train", DataOptions(pool=2))


@pytest.mark.parametrize("kwargs, key", [
    ({"pool": 0}, "data.pool"), ({"downsample": 1.5}, "data.downsample"), ({"downsample": 0.0}, "data.downsample"),
    ({"n_time_bins": True}, "data.n_time_bins"), ({"time_window_us": -1.0}, "data.time_window_us"),
    ({"sensor_width": 640}, "data.sensor_height"), ({"cache_dir": 3}, "data.cache_dir"), ({"binary": 1}, "data.binary"),
])
def test_options_validation_names_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        DataOptions(**kwargs)


def test_options_table_and_unknown_names():
    o = build_options(DataOptions, {"pool": 2, "downsample": 1}, "data.", "run.toml")
    assert o.pool == 2 and o.downsample == 1.0 and isinstance(o.downsample, float)
    with pytest.raises(ConfigError, match=r"data\.pol.*did you mean 'data\.pool'"):
        build_options(DataOptions, {"pol": 2}, "data.", "run.toml")
    with pytest.raises(ConfigError, match=r"unknown data set 'mnist'.*nmnist.*dvsgesture.*events:DIR"):
        open_dataset("mnist", "train", DataOptions())
    assert {"digits-events", "synthetic", "nmnist", "dvsgesture", "pokerdvs", "ncaltech101", "wine",
            "breast_cancer"} <= set(DATASETS)
    with pytest.raises(ConfigError, match="no validation split"):
        open_dataset("synthetic", "val", DataOptions())
