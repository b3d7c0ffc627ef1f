"""What ``spikes export`` / ``spikes run`` need from a checkpoint, and how to write one.

Two kinds are read:

1. A deploy checkpoint (``save_deploy_checkpoint``): ``{"deploy_version": 1, "builder": "module:function",
   "builder_kwargs": {...}, "input_shape": [...], "state_dict": {...}}``; the model is
   ``import_module(module).function(**builder_kwargs)`` with ``state_dict`` loaded. Any model that
   ``spikes.graph.capture`` accepts (or that has ``to_graph``) can be exported this way.
2. A ``spikes train`` checkpoint (``spikes.training``: ``config`` + ``model`` state dict): rebuilt with
   ``spikes.training.loop.build_model`` with the stored ``input_shape`` (checkpoints written before it was
   stored need ``input_shape`` passed); the class count is read from the head's weight.
"""
from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

DEPLOY_VERSION = 1


def save_deploy_checkpoint(path: str | os.PathLike, model: nn.Module, builder: str, builder_kwargs: dict[str, Any],
                           input_shape: tuple[int, ...]) -> None:
    """Write a deploy checkpoint atomically (temp file + ``os.replace``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"deploy_version": DEPLOY_VERSION, "builder": builder, "builder_kwargs": dict(builder_kwargs),
                        "input_shape": list(input_shape), "state_dict": model.state_dict()}, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model(path: str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> tuple[nn.Module, tuple[int, ...]]:
    """(model in eval mode, per-sample input shape) from a checkpoint of either kind."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not a checkpoint dict")
    if "builder" in ckpt:
        module_name, _, func = str(ckpt["builder"]).partition(":")
        try:
            build = getattr(importlib.import_module(module_name), func)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"{path}: builder {ckpt['builder']!r} cannot be imported: {exc}") from exc
        model = build(**ckpt.get("builder_kwargs", {}))
        model.load_state_dict(ckpt["state_dict"])
        shape = tuple(input_shape or ckpt["input_shape"])
    elif "config" in ckpt and "model" in ckpt:
        from spikes.training.config import TrainConfig
        from spikes.training.loop import build_model

        input_shape = input_shape or ckpt.get("input_shape")       # stored since the checkpoint format had it
        if input_shape is None:
            raise ValueError(f"{path}: this 'spikes train' checkpoint does not store the input shape (written before "
                             "it did): pass --input-shape")
        heads = [v for k, v in ckpt["model"].items() if k.startswith("head") and k.endswith("weight")]
        if not heads:
            raise ValueError(f"{path}: no head weight in the model state dict")
        model = build_model(TrainConfig(**ckpt["config"]), tuple(input_shape), int(heads[-1].shape[0]))
        model.load_state_dict(ckpt["model"])
        shape = tuple(input_shape)
    else:
        raise ValueError(f"{path}: neither a deploy checkpoint ('builder') nor a 'spikes train' checkpoint ('config')")
    return model.eval(), shape


def mlp(n_in: int = 64, hidden: int = 48, n_out: int = 10, alpha: float = 0.9) -> nn.Sequential:
    """A deployable LIF MLP (zero reset, no biases): a builder for deploy checkpoints and the notebook."""
    from spikes.layers import TimeDistributed
    from spikes.neurons import LIF

    return nn.Sequential(TimeDistributed(nn.Linear(n_in, hidden, bias=False)), LIF(alpha=alpha, reset="zero"),
                         TimeDistributed(nn.Linear(hidden, n_out, bias=False)), LIF(alpha=alpha, reset="zero"))
