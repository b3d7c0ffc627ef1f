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
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

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
    init_depth: float | None = None  # readout bias; default: the training set's mean depth

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
                  init_depth=cfg.init_depth or 0.0)
    if cfg.model == "snn":
        return StereoSpike(neuron=cfg.neuron, **common)
    return StereoUNetANN(activation=cfg.activation, **common)


class TensorCache:
    """A whole (small) data set stacked in memory: ``x`` (N, 4, H, W), ``depth`` (N, H, W)."""

    def __init__(self, dataset: Dataset, name: str = "data set"):
        n = len(dataset)
        if n == 0:
            raise ValueError(f"{name} is empty")
        xs, ds = [], []
        for i in range(n):
            x, d = dataset[i]
            xs.append(torch.as_tensor(np.asarray(x), dtype=torch.float32))
            ds.append(torch.as_tensor(np.asarray(d), dtype=torch.float32))
        self.x = torch.stack(xs)
        self.depth = torch.stack(ds)
        if self.x.dim() != 4 or self.depth.dim() != 3 or self.x.shape[-2:] != self.depth.shape[-2:]:
            raise ValueError(f"{name}: expected x (4, H, W) and depth (H, W), got x {tuple(self.x.shape[1:])} "
                             f"and depth {tuple(self.depth.shape[1:])}")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.x.shape[-2:])

    def mean_depth(self) -> float:
        valid = self.depth[~torch.isnan(self.depth)]
        if valid.numel() == 0:
            raise ValueError("the data set has no valid depth pixel")
        return float(valid.mean())


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically."""
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
    _atomic_write(path, w)


def save_checkpoint(path: Path, model: StereoUNet, cfg: StereoConfig, extra: dict | None = None) -> None:
    """Atomically save ``{config, state_dict, extra}`` to ``path``."""
    payload = {"config": asdict(cfg), "state_dict": model.state_dict(), "extra": extra or {}}
    _atomic_write(path, lambda tmp: torch.save(payload, tmp))


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
def evaluate(model: StereoUNet, data: TensorCache, fb: float = MVSEC_FB, batch_size: int = 8,
             progress: bool = False) -> dict:
    """MDE (m), one-pixel accuracy, per-unit firing rates (density of nonzero entries) and their mean."""
    model.eval()
    err, n, hit = 0.0, 0, 0
    scale_err = [0.0] * model.levels
    nz: dict[str, float] = {}
    numel: dict[str, int] = {}
    for start in tqdm(range(0, len(data), batch_size), desc="eval", disable=not progress, leave=False):
        x = data.x[start:start + batch_size]
        gt = data.depth[start:start + batch_size]
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


def mean_depth_baseline(train: TensorCache, test: TensorCache) -> float:
    """MDE of predicting the training set's mean depth everywhere."""
    mean = train.mean_depth()
    s, n = abs_error_sum(torch.full_like(test.depth, mean), test.depth)
    return s / n


def train(cfg: StereoConfig, train_data: TensorCache, val_data: TensorCache | None = None,
          checkpoint: Path | None = None, progress: bool = True) -> tuple[StereoUNet, dict]:
    """Train a fresh model; returns it (eval mode) and the history (loss per epoch, final metrics)."""
    torch.manual_seed(cfg.seed)
    cfg.input_size = tuple(train_data.input_size)
    if cfg.init_depth is None:
        cfg.init_depth = train_data.mean_depth()
    model = build_model(cfg)
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
            out = model(train_data.x[idx])
            loss = depth_loss(out.depths, train_data.depth[idx], cfg.grad_weight, cfg.lam,
                              out.penalised, cfg.beta if cfg.model == "snn" else 0.0)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} at epoch {epoch}, batch {b}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss)
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
