"""What a trained spike-and-slab network (:mod:`spikes.layers.spike_slab`) tells: which connections it can lose,
how its sampled networks do, and (multisensory task) its psychometric curves.

- Pruning: a connection is prunable when its probability of being zero is ``pi >= threshold`` (default 0.9, the
  notes' criterion). The report gives per layer the connections, the prunable count and fraction, and the
  test accuracy of the mean-field network before and after fixing the prunable connections at zero.
- Sampled networks: ``samples`` concrete networks drawn from the learned distribution (seeded), each evaluated on
  the test set; their mean, sd, min and max accuracy, beside the mean-field accuracy.
- Psychometric curves: the fraction of "high" choices per modality and event rate on the multisensory test grid,
  and a fitted cumulative Gaussian ``P(high | f) = Phi((f - mu) / sigma)`` per modality (least squares on the
  fractions, ``scipy.optimize.curve_fit``): ``sigma`` is the threshold (Hz from 50 % to 84 % "high"), ``mu`` the
  point of subjective equality, ``1 / (sigma sqrt(2 pi))`` the slope at ``mu``.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize
import scipy.stats
import torch
from matplotlib.figure import Figure

from spikes.datasets.tasks.multisensory import MODALITIES
from spikes.layers.spike_slab import set_mode, spike_slab_layers
from spikes.models.registry import kind_of
from spikes.training.checkpoint import load_model
from spikes.training.config import config_from_dict
from spikes.training.data import open_dataset
from spikes.training.loop import CHECKPOINT_FILE, evaluate, make_batch


def open_run(path: str | Path):
    """``(model, kind, objective, test_set, checkpoint)`` of a run folder (its checkpoint.pt) or a checkpoint."""
    path = Path(path)
    file = path / CHECKPOINT_FILE if path.is_dir() else path
    if not file.exists():
        why = f"no {CHECKPOINT_FILE} in the folder" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"{path}: no checkpoint ({why})")
    model, _, ckpt = load_model(file)
    if not spike_slab_layers(model):
        raise ValueError(f"{file}: model {ckpt['model']['kind']!r} has no spike-and-slab layers (train --model "
                         "spike_slab_rnn)")
    kind = kind_of(ckpt["model"]["kind"])
    config = config_from_dict(ckpt["config"])
    test = open_dataset(config.dataset, "test", config.data, config.data_root, config.train.seed)
    return model, kind, kind.objective(ckpt["model"]["kwargs"], 0.0), test, ckpt


def _accuracy(model, kind, objective, data, batch_size: int) -> float:
    return float(evaluate(model, kind, objective, data, batch_size)["accuracy"])


def sampled_accuracies(model, kind, objective, data, samples: int = 10, seed: int = 0,
                       batch_size: int = 256) -> list[float]:
    """Test accuracy of ``samples`` networks drawn from the model's distribution (generator seeded by ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    try:
        for _ in range(samples):
            set_mode(model, "sampled", g)
            out.append(_accuracy(model, kind, objective, data, batch_size))
    finally:
        set_mode(model, "mean_field")
    return out


def pruning_report(model, kind, objective, data, threshold: float = 0.9, samples: int = 10, seed: int = 0,
                   batch_size: int = 256) -> dict[str, Any]:
    """The pruning and sampling report (module docstring) of a spike-and-slab model on ``data``; the model is not
    changed (pruning runs on a copy)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    layers = {}
    for name, layer in spike_slab_layers(model).items():
        pi = layer.pi.detach()
        n, k = pi.numel(), int(layer.prunable(threshold).sum())
        layers[name] = {"connections": n, "prunable": k, "fraction": k / n, "pi_mean": float(pi.mean()),
                        "pi_median": float(pi.median())}
    total = sum(v["connections"] for v in layers.values())
    prunable = sum(v["prunable"] for v in layers.values())
    mean_field = _accuracy(model, kind, objective, data, batch_size)
    pruned = copy.deepcopy(model)
    for layer in spike_slab_layers(pruned).values():
        layer.prune(threshold)
    sampled = sampled_accuracies(model, kind, objective, data, samples, seed, batch_size)
    pruned_sampled = sampled_accuracies(pruned, kind, objective, data, samples, seed, batch_size)
    return {"threshold": threshold, "layers": layers, "connections": total, "prunable": prunable,
            "prunable_fraction": prunable / total, "mean_field_accuracy": mean_field,
            "pruned_accuracy": _accuracy(pruned, kind, objective, data, batch_size),
            "sampled": {"samples": samples, "seed": seed, "accuracies": sampled, "mean": float(np.mean(sampled)),
                        "sd": float(np.std(sampled)), "min": float(np.min(sampled)), "max": float(np.max(sampled))},
            "pruned_sampled_mean": float(np.mean(pruned_sampled))}


def format_pruning(report: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    r, s = report, report["sampled"]
    lines = [f"{'layer':<12} {'connections':>11} {'pi>=' + format(r['threshold'], 'g'):>9} {'fraction':>8} "
             f"{'mean pi':>8} {'median pi':>9}"]
    for name, v in r["layers"].items():
        lines.append(f"{name:<12} {v['connections']:>11} {v['prunable']:>9} {v['fraction']:>8.3f} {v['pi_mean']:>8.3f} "
                     f"{v['pi_median']:>9.3f}")
    lines.append(f"{'all':<12} {r['connections']:>11} {r['prunable']:>9} {r['prunable_fraction']:>8.3f}")
    lines += ["",
              f"mean-field test accuracy        {r['mean_field_accuracy']:.4f}",
              f"after pruning pi >= {r['threshold']:g}         {r['pruned_accuracy']:.4f}  "
              f"({100 * (r['pruned_accuracy'] - r['mean_field_accuracy']):+.2f} points)",
              f"{s['samples']} sampled networks            {s['mean']:.4f} +- {s['sd']:.4f} (min {s['min']:.4f}, "
              f"max {s['max']:.4f}; {100 * (s['mean'] - r['mean_field_accuracy']):+.2f} points)",
              f"sampled networks, pruned        {r['pruned_sampled_mean']:.4f}"]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- psychometrics
@torch.no_grad()
def choices(model, kind, objective, data, batch_size: int = 256) -> np.ndarray:
    """``(N,)`` the model's choice (class index) per test trial, in order."""
    model.eval()
    out = []
    for i in range(0, len(data), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(data)))
        batch = make_batch(kind, *data.batch(idx), getattr(data, "loss_mask", None))
        output = objective.forward(model, batch)
        out.append(objective.scores(output[0], batch).argmax(1).numpy())
    return np.concatenate(out)


def _cumulative_gaussian(f, mu, sigma):
    return scipy.stats.norm.cdf((f - mu) / sigma)


def fit_psychometric(rates: np.ndarray, p_high: np.ndarray) -> dict[str, float]:
    """Least-squares cumulative Gaussian ``Phi((f - mu) / sigma)`` through ``(rates, p_high)``."""
    rates, p_high = np.asarray(rates, float), np.asarray(p_high, float)
    span = float(rates.max() - rates.min()) or 1.0
    bounds = ([rates.min() - span, 1e-3 * span], [rates.max() + span, 10 * span])
    (mu, sigma), _ = scipy.optimize.curve_fit(_cumulative_gaussian, rates, p_high, p0=(float(rates.mean()), span / 4),
                                              bounds=bounds)
    return {"mu": float(mu), "threshold": float(sigma), "slope": float(1.0 / (sigma * math.sqrt(2 * math.pi)))}


def psychometric(model, kind, objective, data, batch_size: int = 256) -> dict[str, Any]:
    """Per modality: the rates, the fraction of "high" choices at each, and the fit (module docstring); plus the
    accuracy on the conditions away from the boundary (all but the two rates nearest it)."""
    if not hasattr(data, "modality") or not hasattr(data, "rate"):
        raise ValueError("psychometric curves need the multisensory task's test set (its trials' modality and rate)")
    choice = choices(model, kind, objective, data, batch_size)
    y = data.targets.numpy()
    rates = np.unique(data.rate)
    boundary_rates = rates[np.argsort(np.abs(rates - rates.mean()))[:2]]
    easy = ~np.isin(data.rate, boundary_rates)
    curves = {}
    for k, name in enumerate(MODALITIES):
        sel = data.modality == k
        if not sel.any():
            continue
        p = np.array([float((choice[sel & (data.rate == f)] == 1).mean()) for f in rates])
        curves[name] = {"rates": rates.tolist(), "p_high": p.tolist(), **fit_psychometric(rates, p),
                        "accuracy": float((choice[sel] == y[sel]).mean())}
    return {"curves": curves, "accuracy": float((choice == y).mean()),
            "accuracy_away_from_boundary": float((choice[easy] == y[easy]).mean())}


def format_psychometric(result: dict[str, Any]) -> str:
    lines = [f"{'modality':<9} {'threshold (Hz)':>14} {'mu (Hz)':>8} {'accuracy':>8}"]
    for name, c in result["curves"].items():
        lines.append(f"{name:<9} {c['threshold']:>14.3f} {c['mu']:>8.2f} {c['accuracy']:>8.3f}")
    lines.append(f"accuracy {result['accuracy']:.3f}, away from the boundary "
                 f"{result['accuracy_away_from_boundary']:.3f}")
    return "\n".join(lines)


def psychometric_figure(result: dict[str, Any], title: str = "") -> Figure:
    fig = Figure(figsize=(4.5, 3.4))
    ax = fig.add_subplot()
    for name, c in result["curves"].items():
        f = np.asarray(c["rates"])
        fine = np.linspace(f.min(), f.max(), 200)
        line, = ax.plot(fine, _cumulative_gaussian(fine, c["mu"], c["threshold"]),
                        label=f"{name} (threshold {c['threshold']:.2f} Hz)")
        ax.plot(f, c["p_high"], "o", color=line.get_color())
    ax.set_xlabel("event rate (Hz)")
    ax.set_ylabel('fraction "high"')
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
