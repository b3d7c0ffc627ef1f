"""``spikes export`` and ``spikes run`` on a deploy checkpoint: the exported files reproduce the model."""
from __future__ import annotations

import numpy as np
import torch

from spikes.cli import main
from spikes.deploy.checkpoint import mlp, save_deploy_checkpoint
from spikes.graph import capture
from spikes.deploy.network import lower
from spikes.deploy.nir_io import read_nir
from spikes.deploy.quantize import quantize
from spikes.deploy.serialize import load_qnetwork
from spikes.deploy.sim import simulate


def _checkpoint(tmp_path):
    model = mlp(16, 12, 4)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    path = tmp_path / "model.pt"
    save_deploy_checkpoint(path, model, "spikes.deploy.checkpoint:mlp", {"n_in": 16, "hidden": 12, "n_out": 4}, (16,))
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
    assert main(["run", str(path), "--backend", "sim", "--steps", "10", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "firing rate" in out and "predictions" in out
    bad = tmp_path / "bad.pt"
    bad.write_text("nope")
    assert main(["run", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_train_checkpoint_exports_and_runs_without_input_shape(tmp_path, capsys):
    """A 'spikes train' checkpoint stores its per-sample input shape: export and run need no --input-shape, and
    the rebuilt model equals the trained one."""
    from spikes.deploy.checkpoint import load_model
    from spikes.training import TrainConfig, load_checkpoint, train

    cfg = TrainConfig(dataset="synthetic", model="mlp_snn", width=8, n_time_bins=3, batch_size=16, train_limit=32,
                      test_limit=16, epochs=1, checkpoint_every=0, threads=1, progress=False)
    train(cfg, tmp_path / "run", log=lambda m: None)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    model, shape = load_model(ckpt)
    assert list(shape) == load_checkpoint(ckpt)["input_shape"]
    state = load_checkpoint(ckpt)["model"]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert main(["export", str(ckpt), "--to", "nir", "--out", str(tmp_path / "m.nir")]) == 0
    assert (tmp_path / "m.nir").stat().st_size > 0
