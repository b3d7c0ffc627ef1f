"""``spikes export`` and ``spikes run`` on checkpoints: the exported files reproduce the model; bad files are named."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikes.cli import main
from spikes.deploy.network import lower
from spikes.deploy.nir_io import read_nir
from spikes.deploy.quantize import quantize
from spikes.deploy.serialize import load_qnetwork
from spikes.deploy.sim import simulate
from spikes.graph import capture
from spikes.models.classifiers import lif_mlp
from spikes.training.checkpoint import load_checkpoint, load_model, model_entry, save_checkpoint
from spikes.training.config import resolve_config
from spikes.training.loop import train

FACTORY = "spikes.models.classifiers:lif_mlp"


def _checkpoint(tmp_path):
    """A user-built model (a factory named package.module:function) saved in the checkpoint format."""
    kwargs = {"n_in": 16, "hidden": 12, "n_out": 4}
    model = lif_mlp(**kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"model": model_entry(FACTORY, kwargs, (16,)), "weights": model.state_dict()})
    return model, path


def test_export_nir_and_lava_reproduce_the_model(tmp_path, capsys):
    model, path = _checkpoint(tmp_path)
    graph = capture(model, (16,))
    x = (np.random.default_rng(0).random((20, 3, 16)) < 0.3).astype(np.float64)
    assert main(["export", str(path), "--to", "nir", "--out", str(tmp_path / "m.nir")]) == 0
    back = read_nir(tmp_path / "m.nir")
    ref, got = graph.forward(torch.as_tensor(x)), back.forward(torch.as_tensor(x))
    assert all(torch.equal(ref[p], got[p]) for p in graph.populations)
    with torch.no_grad():   # and the torch model itself
        assert torch.equal(model.double()(torch.as_tensor(x)), ref[graph.populations[-1]])
    assert main(["export", str(path), "--to", "lava", "--out", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    assert "fits" in out and "vth" in out
    q = load_qnetwork(tmp_path / "m.npz")
    a, b = simulate(q, {"input": x}), simulate(quantize(lower(graph)), {"input": x})
    assert all(np.array_equal(a[p]["spikes"], b[p]["spikes"]) for p in q.populations)


def test_run_prints_rates_and_bad_checkpoint_is_named(tmp_path, capsys):
    _, path = _checkpoint(tmp_path)
    assert main(["run", str(path), "--backend", "sim", "--random", "--steps", "10", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "firing rate" in out and "2 samples" in out
    bad = tmp_path / "bad.pt"
    bad.write_text("nope")
    assert main(["run", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_first_release_checkpoint_is_refused_with_the_upgrade_command_then_upgrades(tmp_path, capsys):
    """A deploy checkpoint of the first release ('builder' format) is refused by export with the command that
    converts it; after `spikes checkpoint upgrade` it exports and equals the original weights."""
    kwargs = {"n_in": 16, "hidden": 12, "n_out": 4}
    model = lif_mlp(**kwargs)
    old = tmp_path / "old.pt"
    torch.save({"deploy_version": 1, "builder": "spikes.deploy.checkpoint:mlp", "builder_kwargs": kwargs, "input_shape": [16],
                "state_dict": model.state_dict()}, old)
    assert main(["export", str(old), "--to", "nir"]) == 2
    err = capsys.readouterr().err
    assert "old.pt" in err and "spikes checkpoint upgrade" in err
    assert main(["checkpoint", "upgrade", str(old)]) == 0
    new = tmp_path / "old.v2.pt"
    rebuilt, shape, _ = load_model(new)
    assert shape == (16,) and all(torch.equal(v, model.state_dict()[k]) for k, v in rebuilt.state_dict().items())
    assert main(["export", str(new), "--to", "nir", "--out", str(tmp_path / "m.nir")]) == 0


@pytest.mark.parametrize("model", ["mlp_snn", "user_models:flat_lif_mlp"])
def test_train_checkpoint_exports_and_runs(tmp_path, capsys, model):
    """A trained checkpoint holds everything to rebuild its model (kind, arguments, input shape): the rebuilt
    model equals the trained one, and it exports and runs; a user factory trains the same way."""
    flat = {"dataset": "synthetic", "model": model, "n_time_bins": 3, "batch_size": 16, "train_limit": 32,
            "test_limit": 16, "epochs": 1, "checkpoint_every": 0, "threads": 1, "progress": False}
    tables = {"model": {"width": 8, "neuron": "plif"} if model == "mlp_snn" else {"hidden": 16}, "rule": {}, "data": {}, "train": {}}
    cfg = resolve_config(None, tables, flat)
    train(cfg, tmp_path / "run", log=lambda m: None)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    rebuilt, shape, raw = load_model(ckpt)
    assert all(torch.equal(v, raw["weights"][k]) for k, v in rebuilt.state_dict().items())
    assert "test" in load_checkpoint(ckpt)["metrics"]
    assert main(["export", str(ckpt), "--to", "nir", "--out", str(tmp_path / "m.nir")]) == 0
    assert (tmp_path / "m.nir").stat().st_size > 0
    assert main(["run", str(ckpt), "--backend", "sim", "--samples", "4"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_user_model_with_an_unknown_key_is_refused_naming_it(tmp_path, capsys):
    assert main(["train", "--model", "user_models:flat_lif_mlp", "--set", "model.hiden=8", "--dataset", "synthetic",
                 "--no-progress", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "model.hiden" in err and "hidden" in err and "gain" in err
    assert main(["train", "--model", "user_models:no_such", "--dataset", "synthetic", "--run-dir",
                 str(tmp_path / "run2")]) == 2
    assert "no_such" in capsys.readouterr().err
