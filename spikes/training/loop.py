"""The training loop: seeded, checkpointed, resumable, with per-step metrics and a final summary.

Per step: ``logits = model(x)`` with ``x`` time first ``(T, B, C, H, W)``,
``loss = cross_entropy(logits, y) + spike_penalty * r`` where ``r = sum(spikes) / numel(spikes)`` over all
spiking layers (the mean firing rate, differentiable through the surrogate gradient), one optimizer step, one scheduler step (cosine: ``lr_k = lr * (1 + cos(pi k / K)) / 2`` over all ``K`` steps).
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikes.io import atomic_write_text
from spikes.metrics import SpikeProbe
from spikes.metrics.probe import SPIKING
from spikes.training.checkpoint import load_checkpoint, rng_states, save_checkpoint, set_rng_states
from spikes.training.config import ConfigError, TrainConfig, write_config
from spikes.training.data import batch_order, load_split, time_first

CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE = "config.toml", "checkpoint.pt", "metrics.jsonl", "summary.json"
# Keys that must not change when a run is resumed (they fix the model, the data or the batch order).
FIXED_ON_RESUME = ("model", "neuron", "width", "readout", "gain", "dataset", "n_time_bins", "train_limit",
                   "batch_size", "seed", "optimizer", "scheduler", "lr", "weight_decay", "spike_penalty")


def seed_everything(seed: int, threads: int, deterministic: bool) -> None:
    """Seed python, numpy and torch; fix the torch and numba thread counts; ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    try:  # the compiled neuron kernels (spikes.kernels) run numba prange loops
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    torch.use_deterministic_algorithms(deterministic)


def build_model(config: TrainConfig, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """The classifier named by ``config.model``, weights drawn from ``torch.manual_seed(config.seed)``."""
    from spikes.models.classifiers import build_classifier
    torch.manual_seed(config.seed)
    return build_classifier(config.model, input_shape, n_classes, width=config.width, neuron=config.neuron,
                            readout=config.readout, gain=config.gain)


def build_optimizer(config: TrainConfig, model: nn.Module, total_steps: int):
    params = model.parameters()
    if config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    elif config.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    if config.scheduler == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total_steps) / total_steps)))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)
    return opt, sched


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> dict[str, Any]:
    """Loss, accuracy and the per-layer activity table (:class:`SpikeProbe`) on ``(x, y)``, in order."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    with SpikeProbe(model) as probe:
        for i in range(0, len(x), batch_size):
            xb, yb = time_first(x[i:i + batch_size]), y[i:i + batch_size]
            logits = model(xb)
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    model.train(was_training)
    n = max(len(x), 1)
    return {"loss": loss_sum / n, "accuracy": correct / n, "layers": probe.table(),
            "firing_rates": probe.firing_rates(), "mean_firing_rate": probe.mean_firing_rate(),
            "synops_per_sample": probe.total_synops() / n}


def _truncate_metrics(path: Path, last_step: int) -> None:
    """Keep the log lines of steps <= ``last_step`` (a killed run may have logged steps past its checkpoint)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                keep.append(line)
        except (ValueError, KeyError):
            break  # a half-written last line
    atomic_write_text(path, "".join(l + "\n" for l in keep))


def train(config: TrainConfig, run_dir: str | os.PathLike, resume: bool = False,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``config`` in ``run_dir`` (layout in :mod:`spikes.training`); returns the summary dict.

    ``resume``: continue from ``run_dir/checkpoint.pt`` (same batch order, optimizer, scheduler and RNG
    states: the final weights equal those of an uninterrupted run). Without ``resume`` an existing
    checkpoint is an error, so a run is never silently overwritten.
    Process-wide settings it changes (torch/numba threads, deterministic algorithms) are restored on return.
    """
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), _numba_threads())
    try:
        return _train(config, Path(run_dir), resume, log)
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
        if saved[2]:
            import numba
            numba.set_num_threads(saved[2])


def _numba_threads() -> int | None:
    try:
        import numba
        return numba.get_num_threads()
    except ImportError:
        return None


def _train(config: TrainConfig, run_dir: Path, resume: bool, log: Callable[[str], None]) -> dict[str, Any]:
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, metrics_path = run_dir / CHECKPOINT_FILE, run_dir / METRICS_FILE
    for name in (CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE):  # temp files of a killed write
        for stale in run_dir.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)
    ckpt = None
    if ckpt_path.exists():
        if not resume:
            raise FileExistsError(f"{run_dir} already holds {CHECKPOINT_FILE}: pass --resume to continue it, or use a new run directory")
        ckpt = load_checkpoint(ckpt_path)
        for key in FIXED_ON_RESUME:
            if ckpt["config"].get(key) != getattr(config, key):
                raise ConfigError(f"resume of {run_dir}: key {key!r} was {ckpt['config'].get(key)!r} in the checkpoint, "
                                  f"now {getattr(config, key)!r}; it cannot change when resuming")
    elif resume:
        log(f"no {CHECKPOINT_FILE} in {run_dir} yet: starting from the beginning")

    seed_everything(config.seed, config.threads, config.deterministic)
    x_train, y_train = load_split(config.dataset, "train", config.n_time_bins, config.seed, config.train_limit)
    x_test, y_test = load_split(config.dataset, "test", config.n_time_bins, config.seed, config.test_limit)
    n_classes = int(max(int(y_train.max()), int(y_test.max())) + 1)
    model = build_model(config, tuple(x_train.shape[2:]), n_classes)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer, scheduler = build_optimizer(config, model, total_steps)
    epoch, batch, step = 0, 0, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_states(ckpt["rng"])
        epoch, batch, step = (ckpt["position"][k] for k in ("epoch", "batch", "step"))
        _truncate_metrics(metrics_path, step)
        log(f"resumed {run_dir} at step {step} (epoch {epoch}, batch {batch})")
    else:
        metrics_path.unlink(missing_ok=True)
    write_config(config, run_dir / CONFIG_FILE)
    limit = min(total_steps, config.max_steps) if config.max_steps else total_steps

    def checkpoint(ep: int, b: int) -> None:
        save_checkpoint(ckpt_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": rng_states(), "position": {"epoch": ep, "batch": b, "step": step}, "config": config.to_dict(),
            "input_shape": list(x_train.shape[2:])})    # per-sample (C, H, W): what export and run rebuild from

    from tqdm import tqdm
    bar = tqdm(total=limit, initial=min(step, limit), disable=not config.progress, desc="train", unit="step",
               dynamic_ncols=True)
    model.train()
    stopped = step >= limit
    spike_outputs: list[torch.Tensor] = []
    penalty_hooks = [m.register_forward_hook(lambda mod, inp, out: spike_outputs.append(out))
                     for m in model.modules() if isinstance(m, SPIKING)] if config.spike_penalty else []
    try:
        with SpikeProbe(model, layers=list(SPIKING)) as probe, open(metrics_path, "a") as mlog:
            while epoch < config.epochs and not stopped:
                batches = batch_order(len(x_train), config.batch_size, config.seed, epoch)
                seen, correct, loss_sum = 0, 0, 0.0
                while batch < len(batches):
                    idx = batches[batch]
                    xb, yb = time_first(x_train[idx]), y_train[idx]
                    probe.reset()
                    logits = model(xb)
                    loss = F.cross_entropy(logits, yb)
                    if spike_outputs:
                        rate_term = sum(o.sum() for o in spike_outputs) / sum(o.numel() for o in spike_outputs)
                        loss = loss + config.spike_penalty * rate_term
                        spike_outputs.clear()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    batch += 1
                    step += 1
                    acc = float((logits.detach().argmax(1) == yb).float().mean())
                    seen += len(yb)
                    correct += round(acc * len(yb))
                    loss_sum += float(loss.detach()) * len(yb)
                    rate = probe.mean_firing_rate()
                    mlog.write(json.dumps({"step": step, "epoch": epoch, "batch": batch, "loss": float(loss.detach()), "accuracy": acc,
                                           "firing_rate": rate, "lr": scheduler.get_last_lr()[0],
                                           "time_s": round(time.perf_counter() - t_start, 3)}) + "\n")
                    mlog.flush()
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", fr=f"{rate:.3f}")
                    if step >= limit:
                        stopped = True
                        break
                    if config.checkpoint_every and step % config.checkpoint_every == 0:
                        checkpoint(epoch, batch)
                if batch >= len(batches):
                    epoch, batch = epoch + 1, 0
                checkpoint(epoch, batch)
    finally:
        bar.close()
        for h in penalty_hooks:
            h.remove()
    completed = epoch >= config.epochs
    result = evaluate(model, x_test, y_test, config.batch_size * 2)
    summary = {
        "completed": completed, "steps": step, "epochs_done": epoch, "dataset": config.dataset,
        "n_train": len(x_train), "n_test": len(x_test), "n_parameters": sum(p.numel() for p in model.parameters()),
        "test_loss": result["loss"], "test_accuracy": result["accuracy"],
        "mean_firing_rate": result["mean_firing_rate"], "firing_rates": result["firing_rates"],
        "synops_per_sample": result["synops_per_sample"], "layers": result["layers"],
        "wall_time_s": time.perf_counter() - t_start, "config": config.to_dict(),
    }
    atomic_write_text(run_dir / SUMMARY_FILE, json.dumps(summary, indent=1) + "\n")
    return summary
