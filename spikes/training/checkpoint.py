"""Checkpoints written atomically, with everything needed to continue a run bit-exactly.

A checkpoint is a dict: ``model``, ``optimizer``, ``scheduler`` (state dicts), ``rng`` (torch, numpy,
python states), ``position`` (``epoch``, ``batch`` = next batch to run in that epoch, ``step`` = optimizer
steps done), ``config`` (resolved config dict) and ``version``.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikes.io import atomic_torch_save

CHECKPOINT_VERSION = 1


def rng_states() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save`` to a temp file beside ``path``, fsync, ``os.replace``: a kill leaves the old or the new file."""
    atomic_torch_save(path, {"version": CHECKPOINT_VERSION, **state})


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (our own file: full unpickling for RNG states)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: not a spikes checkpoint of version {CHECKPOINT_VERSION}")
    return ckpt
