"""Training and evaluation of StereoSpike (and its ANN twin) on stereo-depth data sets.

A data set yields ``(x, depth)``: ``x`` (4, H, W) float event counts (left ON/OFF, right ON/OFF), ``depth``
(H, W) metres with NaN where invalid (``spikes.datasets.MVSECStereo`` or anything alike). Training uses
Adam with the learning rate halved at fixed fractions of the run (the paper: epochs 8, 42, 60 of 70),
the multi-scale loss of :mod:`~spikes.models.stereospike.loss` on every readout scale, and optionally
the spike penalty. Everything is seeded; checkpoints are written atomically (temp file + os.replace).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from spikes.io import atomic_torch_save, atomic_write_json
from spikes.models.stereospike.ann import StereoUNetANN
from spikes.models.stereospike.loss import depth_loss
from spikes.models.stereospike.metrics import MVSEC_FB, abs_error_sum, firing_rate, one_pixel_count
from spikes.models.stereospike.model import StereoSpike, StereoUNet

PAPER_MILESTONES = (8 / 70, 42 / 70, 60 / 70)


@dataclass
class StereoConfig:
    """Model and training hyper-parameters (paper values in brackets)."""

    model: str = "snn"              # 'snn' (StereoSpike) or 'ann' (BatchNorm twin)
    base: int = 8                   # channels of the first layer [32]
    levels: int = 3                 # encoder levels [4]
    n_res: int = 2                  # SEW residual blocks [2]
    neuron: str = "if"              # 'if' or 'plif' (SNN)
    activation: str = "sigmoid"     # ANN unit activation
    epochs: int = 20                # [70]
    lr: float = 2e-3                # [2e-4]
    batch_size: int = 4             # [1]
    grad_weight: float = 0.5        # weight of the gradient-matching term [0.5]
    lam: float = 0.5                # scale-invariance weight of L_reg [1]; < 1 also fits the mean depth
    beta: float = 0.0               # spike-penalty weight [0 or 0.5]
    milestones: tuple[float, ...] = PAPER_MILESTONES  # lr halved at these fractions of the epochs
    seed: int = 0
    fb: float = MVSEC_FB            # focal x baseline (px m) for the one-pixel accuracy
    input_size: tuple[int, int] | None = None  # set from the data
    in_channels: int = 4            # set from the data
    init_depth: float | None = None  # readout bias; default: the training set's mean depth
    init_from: str | None = None    # start from this checkpoint's weights (e.g. penalty fine-tuning)

    def __post_init__(self) -> None:
        if self.model not in ("snn", "ann"):
            raise ValueError(f"StereoConfig.model must be 'snn' or 'ann', got {self.model!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"StereoConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"StereoConfig.lr must be > 0, got {self.lr}")
        if self.beta < 0:
            raise ValueError(f"StereoConfig.beta must be >= 0, got {self.beta}")
        self.milestones = tuple(float(m) for m in self.milestones)
        if self.input_size is not None:
            self.input_size = tuple(int(s) for s in self.input_size)


def build_model(cfg: StereoConfig) -> StereoUNet:
    """The network ``cfg`` describes (``cfg.input_size`` must be set)."""
    if cfg.input_size is None:
        raise ValueError("StereoConfig.input_size is not set (it comes from the data set)")
    common = dict(base=cfg.base, levels=cfg.levels, n_res=cfg.n_res, input_size=cfg.input_size,
                  in_channels=cfg.in_channels,
                  init_depth=cfg.init_depth or 0.0)
    if cfg.model == "snn":
        return StereoSpike(neuron=cfg.neuron, **common)
    return StereoUNetANN(activation=cfg.activation, **common)


class StereoData:
    """A stereo-depth data set as batches: ``batch(idx) -> (x (B, 4, H, W), depth (B, H, W))``.

    Small sets (below ``max_bytes``) are stacked in memory once; larger ones (full MVSEC) are read item by
    item on demand.
    """

    def __init__(self, dataset: Dataset, name: str = "data set", max_bytes: float = 1e9):
        self.dataset, self.name = dataset, name
        n = len(dataset)
        if n == 0:
            raise ValueError(f"{name} is empty")
        x, d = self._item(0)
        if x.dim() != 3 or d.dim() != 2 or x.shape[-2:] != d.shape:
            raise ValueError(f"{name}: expected x (C, H, W) and depth (H, W), got x {tuple(x.shape)} and depth "
                             f"{tuple(d.shape)}")
        self.in_channels = x.shape[0]
        self.input_size: tuple[int, int] = tuple(d.shape)
        self._n = n
        self.x: torch.Tensor | None = None
        self.depth: torch.Tensor | None = None
        if n * (x.numel() + d.numel()) * 4 <= max_bytes:
            items = [self._item(i) for i in range(n)]
            self.x = torch.stack([a for a, _ in items])
            self.depth = torch.stack([b for _, b in items])

    def _item(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, d = self.dataset[i]
        return (torch.as_tensor(np.asarray(x), dtype=torch.float32),
                torch.as_tensor(np.asarray(d), dtype=torch.float32))

    def __len__(self) -> int:
        return self._n

    def batch(self, idx: torch.Tensor | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.x is not None:
            idx = torch.as_tensor(idx)
            return self.x[idx], self.depth[idx]
        items = [self._item(int(i)) for i in idx]
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    def batches(self, batch_size: int):
        for start in range(0, len(self), batch_size):
            yield self.batch(list(range(start, min(start + batch_size, len(self)))))

    def mean_depth(self) -> float:
        """Mean of the valid depth pixels over the whole set."""
        s, n = 0.0, 0
        for _, d in self.batches(64):
            valid = d[~torch.isnan(d)]
            s, n = s + float(valid.double().sum()), n + valid.numel()
        if n == 0:
            raise ValueError(f"{self.name} has no valid depth pixel")
        return s / n


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically."""
    atomic_write_json(path, obj, indent=2)


def save_checkpoint(path: Path, model: StereoUNet, cfg: StereoConfig, extra: dict | None = None) -> None:
    """Atomically save ``{config, state_dict, extra}`` to ``path``."""
    payload = {"config": asdict(cfg), "state_dict": model.state_dict(), "extra": extra or {}}
    atomic_torch_save(path, payload)


def load_checkpoint(path: Path) -> tuple[StereoUNet, StereoConfig, dict]:
    """Model (eval mode), config and extra information of a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or "config" not in payload or "state_dict" not in payload:
        raise ValueError(f"checkpoint {path} is not a StereoSpike checkpoint (no config/state_dict)")
    cfg = StereoConfig(**payload["config"])
    model = build_model(cfg)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, cfg, payload.get("extra", {})


@torch.no_grad()
def evaluate(model: StereoUNet, data: StereoData, fb: float = MVSEC_FB, batch_size: int = 8,
             progress: bool = False) -> dict:
    """MDE (m), one-pixel accuracy, per-unit firing rates (density of nonzero entries) and their mean."""
    model.eval()
    err, n, hit = 0.0, 0, 0
    scale_err = [0.0] * model.levels
    nz: dict[str, float] = {}
    numel: dict[str, int] = {}
    for x, gt in tqdm(data.batches(batch_size), total=math.ceil(len(data) / batch_size), desc="eval",
                      disable=not progress, leave=False):
        out = model(x)
        s, k = abs_error_sum(out.depth, gt)
        err, n = err + s, n + k
        hit += one_pixel_count(out.depth, gt, fb)[0]
        for i, d in enumerate(out.depths):
            scale_err[i] += abs_error_sum(d, gt)[0]
        for name, t in {**out.activations, **out.penalised}.items():
            nz[name] = nz.get(name, 0.0) + float((t != 0).sum())
            numel[name] = numel.get(name, 0) + t.numel()
    if n == 0:
        raise ValueError("evaluate: the data set has no valid depth pixel")
    rates = {k: nz[k] / numel[k] for k in nz}
    units = model.unit_names
    result = {"mde": err / n, "one_pixel_accuracy": hit / n, "n_pixels": n, "fb": fb,
              "mde_per_scale": {name: e / n for name, e in zip(model.depth_names, scale_err)}}
    if isinstance(model, StereoSpike):
        result["firing_rates"] = {k: rates[k] for k in units}
        result["count_densities"] = {k: rates[k] for k in rates if k not in units}
        result["mean_firing_rate"] = float(np.mean([rates[k] for k in units]))
        enc = [rates[k] for k in units if k.startswith(("bottom", "enc", "res"))]
        dec = [rates[k] for k in units if k.startswith("dec")]
        result["encoder_firing_rate"] = float(np.mean(enc))
        result["decoder_firing_rate"] = float(np.mean(dec))
    return result


def mean_depth_baseline(train: StereoData, test: StereoData) -> float:
    """MDE of predicting the training set's mean depth everywhere."""
    mean = train.mean_depth()
    s, n = 0.0, 0
    for _, d in test.batches(64):
        a, b = abs_error_sum(torch.full_like(d, mean), d)
        s, n = s + a, n + b
    return s / n


def train(cfg: StereoConfig, train_data: StereoData, val_data: StereoData | None = None,
          checkpoint: Path | None = None, progress: bool = True) -> tuple[StereoUNet, dict]:
    """Train a fresh model; returns it (eval mode) and the history (loss per epoch, final metrics)."""
    torch.manual_seed(cfg.seed)
    cfg.input_size = tuple(train_data.input_size)
    cfg.in_channels = train_data.in_channels
    if cfg.init_depth is None:
        cfg.init_depth = train_data.mean_depth()
    model = build_model(cfg)
    if cfg.init_from:
        payload = torch.load(cfg.init_from, map_location="cpu", weights_only=False)
        try:
            model.load_state_dict(payload["state_dict"])
        except (RuntimeError, KeyError) as err:
            raise ValueError(f"init_from={cfg.init_from}: checkpoint does not fit this model ({err})") from err
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    milestones = sorted({max(1, round(m * cfg.epochs)) for m in cfg.milestones if 0 < m < 1})
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.5)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: dict[str, Any] = {"loss": [], "val_mde": []}
    steps = math.ceil(len(train_data) / cfg.batch_size)
    bar = tqdm(total=cfg.epochs * steps, desc=f"train {cfg.model} beta={cfg.beta:g}", disable=not progress)
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(train_data), generator=gen)
        total = 0.0
        for b in range(steps):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x, gt = train_data.batch(idx)
            out = model(x)
            loss = depth_loss(out.depths, gt, cfg.grad_weight, cfg.lam,
                              out.penalised, cfg.beta if cfg.model == "snn" else 0.0)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} at epoch {epoch}, batch {b}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            bar.update(1)
        sched.step()
        history["loss"].append(total / steps)
        if val_data is not None:
            history["val_mde"].append(evaluate(model, val_data, cfg.fb)["mde"])
        bar.set_postfix(loss=f"{total / steps:.4f}", **({"val_mde": f"{history['val_mde'][-1]:.3f}"}
                                                         if history["val_mde"] else {}))
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, cfg, {"epoch": epoch + 1, "history": history})
    bar.close()
    model.eval()
    return model, history
