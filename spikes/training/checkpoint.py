"""The one checkpoint format: what ``spikes train`` writes and ``spikes export``, ``run`` and ``compare`` read.

A checkpoint is a ``torch.save`` dict, written atomically (:func:`spikes.io.atomic_torch_save`)::

    format     "spikes-checkpoint"          version   2
    model      {"kind": name or "package.module:factory", "kwargs": constructor arguments (data-dependent ones
               resolved: input shape, class count, ...; "seed" the weight seed), "input_shape": per-sample input of
               the data (no time axis), "graph_input_shape": per-sample input of the deploy graph}
    weights    the model's state dict
    rule       {"name": "bptt" | "eprop" | "gt" | ..., "state": the rule's own state (feedback matrices, ...)}
    optimizer, scheduler   state dicts (None for rules without an optimizer)
    rng        torch / numpy / python RNG states
    position   {"epoch", "batch" (next batch of that epoch), "step" (steps done)}
    config     the run's four tables (:class:`spikes.training.config.RunConfig`.to_dict())
    data       the training set's description (name, root, sizes, classes, options)
    metrics    the latest metrics ({"test": {...}} once the run has been evaluated)

Checkpoints of the first release (four formats: ``spikes train`` version 1, ``spikes stereo``, the demo's e-prop
stage, deploy checkpoints with a ``builder``) are converted by :func:`upgrade` (``spikes checkpoint upgrade OLD
[NEW]``); :func:`load_checkpoint` refuses them with a message that says so.
"""
from __future__ import annotations

import os
import random
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikes.io import atomic_torch_save
from spikes.models.registry import kind_of
from spikes.training.config import config_from_dict

FORMAT, VERSION = "spikes-checkpoint", 2


class CheckpointError(ValueError):
    """A file is not a readable spikes checkpoint; the message names the file and what to do."""


def rng_states() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (the keys of the module docstring) atomically: a kill leaves the old or the new file."""
    missing = [k for k in ("model", "weights") if k not in state]
    if missing:
        raise ValueError(f"save_checkpoint({path}): missing keys {missing}")
    atomic_torch_save(path, {"format": FORMAT, "version": VERSION, **state})


def _read(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)   # our own file: RNG states need pickle
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc}") from exc


def old_format(ckpt: Any) -> str | None:
    """The first-release format of ``ckpt`` ("train-v1", "stereo", "eprop-stage", "deploy"), or None."""
    if not isinstance(ckpt, dict) or ckpt.get("format") == FORMAT:
        return None
    if ckpt.get("version") == 1 and "config" in ckpt and "model" in ckpt:
        return "train-v1"
    if "builder" in ckpt and "state_dict" in ckpt:
        return "deploy"
    if "state_dict" in ckpt and isinstance(ckpt.get("config"), dict) and "base" in ckpt["config"]:
        return "stereo"
    if "state_dict" in ckpt and is_dataclass(ckpt.get("config")) and hasattr(ckpt["config"], "n_rec"):
        return "eprop-stage"
    return None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint of the current format; a first-release one raises :class:`CheckpointError` saying how to
    convert it, anything else one naming the file."""
    path = Path(path)
    ckpt = _read(path)
    old = old_format(ckpt)
    if old is not None:
        raise CheckpointError(f"{path}: a first-release checkpoint ({old} format); convert it once with "
                              f"`spikes checkpoint upgrade {path}` (writes the current format beside it, or in place "
                              "with --in-place)")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a spikes checkpoint (no 'format': {FORMAT!r})")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')!r}; this spikes reads version {VERSION}")
    for key in ("model", "weights"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint has no {key!r} entry")
    return ckpt


def build_model(ckpt: dict[str, Any]):
    """The model a checkpoint describes, with its weights, in eval mode (GT networks have no eval mode)."""
    spec = ckpt["model"]
    try:
        model = kind_of(spec["kind"]).construct(dict(spec["kwargs"]))
    except ValueError as exc:   # a user factory that cannot be imported, arguments it does not take
        raise CheckpointError(f"checkpoint of model {spec['kind']!r}: {exc}") from exc
    try:
        model.load_state_dict(ckpt["weights"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint of model {spec['kind']!r}: the weights do not fit the model its "
                              f"arguments build ({exc})") from exc
    if hasattr(model, "eval"):
        model.eval()
    return model


def load_model(path: str | os.PathLike):
    """``(model, graph_input_shape, checkpoint)`` from a checkpoint file: what export, run and the demo use."""
    ckpt = load_checkpoint(path)
    try:
        model = build_model(ckpt)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return model, tuple(ckpt["model"]["graph_input_shape"]), ckpt


def model_entry(kind_name: str, kwargs: dict[str, Any], input_shape) -> dict[str, Any]:
    """The ``model`` entry of a checkpoint."""
    kind = kind_of(kind_name)
    shape = tuple(int(s) for s in input_shape)
    return {"kind": kind_name, "kwargs": dict(kwargs), "input_shape": list(shape),
            "graph_input_shape": list(kind.graph_input_shape(shape))}


# builders of first-release deploy checkpoints that moved: the first release's spikes.deploy.checkpoint is gone
MOVED_BUILDERS = {"spikes.deploy.checkpoint:mlp": "spikes.models.classifiers:lif_mlp"}


def upgrade(old: dict[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """Convert a first-release checkpoint dict to the current format (weights and settings kept; the optimizer
    state of a ``spikes train`` v1 checkpoint too, so it can still be resumed)."""
    fmt = old_format(old)
    if fmt == "train-v1":
        c = old["config"]
        shape = old.get("input_shape")
        if shape is None:
            raise CheckpointError(f"{source}: this first-release 'spikes train' checkpoint does not store its input "
                                  "shape (written before it did); retrain it")
        heads = [v for k, v in old["model"].items() if k.startswith("head") and k.endswith("weight")]
        kwargs = {"input_shape": list(shape), "n_classes": int(heads[-1].shape[0]), "width": c["width"],
                  "neuron": c["neuron"], "readout": c["readout"], "gain": c["gain"], "seed": c["seed"]}
        tables = {"model": {"kind": c["model"], **{k: c[k] for k in ("width", "neuron", "readout", "gain")}},
                  "rule": {"name": "bptt"},
                  "data": {"dataset": c["dataset"], "n_time_bins": c["n_time_bins"], "train_limit": c["train_limit"],
                           "test_limit": c["test_limit"]},
                  "train": {k: c[k] for k in ("epochs", "max_steps", "batch_size", "lr", "weight_decay", "optimizer",
                                              "scheduler", "seed", "checkpoint_every", "threads", "deterministic",
                                              "progress", "spike_penalty")}}
        return {"format": FORMAT, "version": VERSION, "model": model_entry(c["model"], kwargs, shape),
                "weights": old["model"], "rule": {"name": "bptt", "state": {}}, "optimizer": old.get("optimizer"),
                "scheduler": old.get("scheduler"), "rng": old.get("rng"), "position": old.get("position"),
                "config": config_from_dict(tables, source).to_dict(), "data": {"name": c["dataset"]}, "metrics": {}}
    if fmt == "stereo":
        c = old["config"]
        kwargs = {"snn": c["model"] == "snn", "base": c["base"], "levels": c["levels"], "n_res": c["n_res"],
                  "neuron": c["neuron"], "grad_weight": c["grad_weight"], "lam": c["lam"],
                  "init_depth": float(c["init_depth"] or 0.0), "input_size": list(c["input_size"]),
                  "in_channels": int(c["in_channels"]), "seed": c["seed"]}
        shape = (int(c["in_channels"]), *c["input_size"])
        return {"format": FORMAT, "version": VERSION, "model": model_entry("stereospike", kwargs, shape),
                "weights": old["state_dict"], "rule": {"name": "bptt", "state": {}},
                "config": {"model": {"kind": "stereospike"}, "train": {"spike_penalty": float(c["beta"])}},
                "data": {}, "metrics": dict(old.get("extra") or {})}
    if fmt == "eprop-stage":
        c = old["config"]
        kwargs = {"n_in": c.n_in, "n_out": c.n_out, "n_rec": c.n_rec, "n_adaptive": c.n_adaptive, "dt": c.dt,
                  "tau_m": c.tau_m, "tau_a": c.tau_a, "tau_out": c.tau_out, "v_th": c.v_th, "n_ref": c.n_ref,
                  "c_reg": 0.0, "f_target": 10.0, "seed": 0}
        return {"format": FORMAT, "version": VERSION, "model": model_entry("rsnn", kwargs, (c.n_in,)),
                "weights": old["state_dict"], "rule": {"name": "eprop", "state": {}},
                "config": {"model": {"kind": "rsnn"}}, "data": {}, "metrics": {}}
    if fmt == "deploy":
        kwargs = dict(old.get("builder_kwargs", {}))
        builder = MOVED_BUILDERS.get(old["builder"], old["builder"])
        return {"format": FORMAT, "version": VERSION, "model": model_entry(builder, kwargs, old["input_shape"]),
                "weights": old["state_dict"], "rule": {"name": "bptt", "state": {}},
                "config": {"model": {"kind": builder}}, "data": {}, "metrics": {}}
    raise CheckpointError(f"{source}: not a first-release spikes checkpoint: nothing to upgrade")


def upgrade_file(path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Convert the first-release checkpoint ``path`` into ``out`` (default: ``<stem>.v2<suffix>`` beside it)."""
    path = Path(path)
    new = upgrade(_read(path), str(path))
    build_model(new)                                  # the weights must fit before anything is written
    target = Path(out) if out is not None else path.with_name(f"{path.stem}.v2{path.suffix}")
    atomic_torch_save(target, new)
    return target
