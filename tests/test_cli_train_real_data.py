"""Real event data into ``spikes train`` end to end: fixture trees in the real N-MNIST and DVS Gesture layouts (the real
N-MNIST recording of ../shared plus tiny generated files) and an ``events:DIR`` folder of mixed-format real recordings
train one epoch from the CLI, write a checkpoint, and that checkpoint exports to Lava and runs on ``sim``."""
from __future__ import annotations

import json

import pytest

from fixtures_events import make_dvsgesture_tree, make_events_dir, make_nmnist_tree
from spikes.cli import main
from spikes.training.checkpoint import load_checkpoint

# a deployable classifier (PLIF: zero reset) on the whole sensor, a few time bins, one epoch
TRAIN = ["--model", "mlp_snn", "--neuron", "plif", "--width", "16", "--gain", "4", "--epochs", "1", "--batch-size", "4",
         "--n-time-bins", "4", "--threads", "1", "--no-progress"]


def _classes(dataset: str, root: str | None) -> list[str]:
    from spikes.training.data import DataOptions, open_dataset
    return open_dataset(dataset, "train", DataOptions(), root or "").classes


def _train_export_run(tmp_path, capsys, dataset: str, root: str | None, extra=()):
    run = tmp_path / "run"
    args = ["train", "--dataset", dataset, "--run-dir", str(run), *TRAIN, *extra]
    if root is not None:
        args += ["--data-root", root]
    assert main(args) == 0, capsys.readouterr().err
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["data"]["classes"] == _classes(dataset, root) and ckpt["position"]["epoch"] == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_train"] == ckpt["data"]["len"] and summary["n_test"] >= 1
    assert main(["export", str(run / "checkpoint.pt"), "--to", "lava", "--out", str(tmp_path / "net.npz")]) == 0
    assert (tmp_path / "net.npz").stat().st_size > 0
    assert main(["run", str(run / "checkpoint.pt"), "--backend", "sim", "--samples", "2"]) == 0
    assert "accuracy" in capsys.readouterr().out
    return ckpt


def test_nmnist_tree_trains_and_exports(tmp_path, capsys):
    root = make_nmnist_tree(tmp_path / "data")
    ckpt = _train_export_run(tmp_path, capsys, "nmnist", str(root))
    assert ckpt["model"]["input_shape"] == [2, 34, 34] and len(ckpt["data"]["classes"]) == 10   # tonic's classes


def test_dvsgesture_tree_trains_and_exports(tmp_path, capsys):
    root = make_dvsgesture_tree(tmp_path / "data")
    ckpt = _train_export_run(tmp_path, capsys, "dvsgesture", str(root), extra=["--set", "data.downsample=0.125"])
    assert ckpt["model"]["input_shape"] == [2, 16, 16]


def test_events_dir_of_mixed_formats_trains_and_exports(tmp_path, capsys):
    folder = make_events_dir(tmp_path / "mine")
    ckpt = _train_export_run(tmp_path, capsys, f"events:{folder}", None, extra=["--set", "data.downsample=0.05"])
    assert ckpt["data"]["classes"] == sorted(p.name for p in folder.iterdir() if p.is_dir())


def test_missing_data_root_names_the_expected_folder(tmp_path, capsys):
    assert main(["train", "--dataset", "nmnist", "--data-root", str(tmp_path / "nowhere"), "--run-dir",
                 str(tmp_path / "run"), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert "NMNIST" in err and "nowhere" in err
