"""From a checkpoint to a chip: the one path ``spikes export``, ``spikes run`` and the demo share for every model.

``open_checkpoint(path)`` rebuilds the model of any checkpoint (:mod:`spikes.training.checkpoint`), ``graph_of``
turns it into the graph IR (the model's own ``to_graph``, ``spikes.graph.capture`` for layer sequences, the GT
network's graph with its integer feature codes), and ``deploy(...)`` runs test samples on the chip backends with
the deployer of the model's task (classification on spike counts, e-prop's readout, StereoSpike's depth, GT's
fewest-spikes label), returning ``{backend: BackendResult}`` (metric and per-layer rows).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from spikes.graph import Graph, capture
from spikes.models.registry import ModelKind, kind_of
from spikes.pipeline.backends import deploy_classifier
from spikes.pipeline.eprop import deploy_rsnn
from spikes.pipeline.gt import deploy_gt
from spikes.pipeline.stereo import deploy_stereo
from spikes.training.checkpoint import load_model
from spikes.training.config import config_from_dict
from spikes.training.data import open_dataset, time_first

DEPLOYERS = {"rsnn": deploy_rsnn, "stereospike": deploy_stereo, "gt_network": deploy_gt}


@dataclass
class Loaded:
    """A checkpoint's model (eval mode), its kind, the deploy graph's per-sample input shape and the checkpoint."""

    model: Any
    kind: ModelKind
    input_shape: tuple[int, ...]
    checkpoint: dict

    @property
    def name(self) -> str:
        return self.checkpoint["model"]["kind"]


def open_checkpoint(path: str | os.PathLike) -> Loaded:
    model, shape, ckpt = load_model(path)
    return Loaded(model, kind_of(ckpt["model"]["kind"]), shape, ckpt)


def graph_of(loaded: Loaded) -> Graph:
    """The deploy graph of a checkpoint's model (``capture``: its own ``to_graph(input_shape)`` where it has one;
    the GT network's takes its features as integer codes of ``INPUT_BITS`` bits, its default)."""
    return capture(loaded.model, loaded.input_shape)


def test_samples(loaded: Loaded, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` samples of the checkpoint's own test split, as its deployer takes them: time-first inputs
    ``(T, N, *graph input)`` for sequence models, ``(1, N, C, H, W)`` frames for StereoSpike, ``(N, D)`` features for
    GT networks; and the targets."""
    if not loaded.checkpoint.get("config", {}).get("data", {}).get("dataset"):
        raise ValueError(f"this {loaded.name!r} checkpoint names no data set (a converted first-release one?): pass "
                         "--input FILE.npy (with --labels) or --random")
    config = config_from_dict(loaded.checkpoint["config"])
    data = open_dataset(config.dataset, "test", config.data, config.data_root, config.train.seed)
    idx = torch.arange(min(n, len(data)))
    x, y = data.batch(idx)
    kind = loaded.kind
    if kind.data == "frames":
        x = kind.prepare_input(time_first(x))
    elif kind.data == "stereo":
        x = x[None]
    return x.numpy(), y.numpy()


def random_samples(loaded: Loaded, steps: int, batch: int, rate: float, seed: int) -> tuple[np.ndarray, None]:
    """Random input of the graph's shape: spikes with probability ``rate`` per entry and step (GT: features
    uniform in [0, 1]; StereoSpike: one frame of event counts 0-3)."""
    rng = np.random.default_rng(seed)
    if loaded.kind.data == "tabular":
        return rng.random((batch, *loaded.input_shape)), None
    if loaded.kind.data == "stereo":
        return rng.poisson(rate, (1, batch, *loaded.input_shape)).astype(np.float32), None
    return (rng.random((steps, batch, *loaded.input_shape)) < rate).astype(np.float32), None


def deploy(loaded: Loaded, x: np.ndarray, y: np.ndarray | None, backends: tuple[str, ...],
           lava_samples: int | None = None, progress: bool = True) -> dict:
    """``{backend: BackendResult}`` of the checkpoint's model on ``x`` (layout of :func:`test_samples`)."""
    deployer = DEPLOYERS.get(loaded.name, deploy_classifier)
    unlabelled = y is None and loaded.kind.data != "tabular"
    if unlabelled:   # the deployers score targets; random input has none: score dummies, report no metric
        n = x.shape[1]
        y = np.ones((n, *x.shape[-2:]), np.float32) if loaded.kind.data == "stereo" else np.zeros(n, np.int64)
    results = deployer(loaded.model, x, y, backends=backends, lava_samples=lava_samples, progress=progress)
    if unlabelled:
        for result in results.values():
            result.metric = None
    return results
