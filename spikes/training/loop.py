"""The one training loop: any model kind, any learning rule, any data set; seeded, checkpointed, resumable.

Per step: the batch of the seeded order (``batch_order``: a pure function of seed and epoch, so a resumed run skips
exactly the batches it did), reshaped for the model (time first ``(T, B, ...)`` for event frames), goes to the
rule's ``train_step`` with the model kind's objective (:mod:`spikes.models.registry`); then the learning-rate
schedule steps (cosine ``lr_k = lr (1 + cos(pi k / K)) / 2`` over all K steps, constant, or halved at the
milestone epochs) and the callbacks run (:mod:`spikes.training.callbacks`: metrics log, progress, checkpoints,
firing-rate probe, best-epoch keeping).

Run directory (``spikes train --run-dir DIR``)::

    DIR/config.toml     the resolved config: the four tables [model] [rule] [data] [train]
    DIR/checkpoint.pt   the checkpoint (:mod:`spikes.training.checkpoint`), rewritten atomically every
                        ``train.checkpoint_every`` steps, at each epoch end, and at the end with the test metrics
    DIR/metrics.jsonl   one JSON object per step
    DIR/summary.json    written at the end: completed, steps, epochs_done, model, rule, dataset, n_train, n_test,
                        n_parameters, metric_name, test_metric, test_<metric> (test_accuracy, test_mde, ...),
                        test_loss, mean_firing_rate, firing_rates {layer: rate}, synops_per_sample, layers (SpikeProbe
                        rows on the test set), wall_time_s, config, learning (the rule's measurements of the
                        trained model, ``{measure: {layer: value}}``: the alignment rules' angles)

Resuming (``resume=True``) restores weights, optimizer, scheduler, rule state and RNG states, so a run killed at any
point and resumed ends with the same weights as an uninterrupted one.

Several processes (``spikes train --nproc N``, ``torchrun --nproc_per_node N -m spikes train``): each rank trains on
its stride shard of every global batch and the gradients are averaged before each optimizer step
(:mod:`spikes.training.distributed`), so N processes train the weights one process trains; rank 0 alone writes the
run directory; step metrics and evaluations are reduced across the ranks.
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numba
import numpy as np
import torch
from torch import nn

from spikes.io import atomic_write_json, stale_temporaries
from spikes.learning.rule import Batch, LearningRule, Objective, StepOutput
from spikes.metrics.probe import SpikeProbe
from spikes.models.registry import ModelKind
from spikes.options import ConfigError
from spikes.training import distributed
from spikes.training.callbacks import Callback, Checkpointer, FiringRateProbe, KeepBest, MetricsLog, ProgressBar
from spikes.training.checkpoint import (CheckpointError, load_checkpoint, model_entry, rng_states, save_checkpoint,
                                        set_rng_states)
from spikes.training.config import RunConfig, write_config
from spikes.training.data import batch_order, open_dataset, time_first

CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE = "config.toml", "checkpoint.pt", "metrics.jsonl", "summary.json"
# keys that may change when a run is resumed (they fix neither the model, the data nor the batch order)
FREE_ON_RESUME = {("train", k) for k in ("epochs", "max_steps", "checkpoint_every", "threads", "progress", "patience")}


def seed_everything(seed: int, threads: int, deterministic: bool) -> None:
    """Seed python, numpy and torch; fix the torch and numba thread counts; ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))   # the compiled neuron kernels' prange loops
    torch.use_deterministic_algorithms(deterministic)


def parameters(model) -> list[torch.Tensor]:
    """The trainable tensors of ``model`` (none for models that are not ``nn.Module``s, e.g. GT networks)."""
    return list(model.parameters()) if isinstance(model, nn.Module) else []


def build_optimizer(config: RunConfig, rule: LearningRule, model, steps_per_epoch: int, total_steps: int):
    """``(optimizer, scheduler)`` of the ``[train]`` table; ``(None, None)`` for rules that need no optimizer."""
    t = config.train
    params = parameters(model)
    if not rule.uses_optimizer or not params:
        return None, None
    if t.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    elif t.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay)
    if t.scheduler == "cosine":
        factor = lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total_steps) / total_steps))  # noqa: E731
    elif t.scheduler == "step":
        epochs = sorted({max(1, round(m * t.epochs)) for m in t.milestones if 0 < m < 1})
        factor = lambda k: 0.5 ** sum(k // steps_per_epoch >= e for e in epochs)  # noqa: E731
    else:
        factor = lambda k: 1.0  # noqa: E731
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def make_batch(kind: ModelKind, x: torch.Tensor, y: torch.Tensor, mask=None) -> Batch:
    """A data set's ``(x, y)`` as the model takes it: frames time first, then the kind's own reshaping."""
    if kind.data == "frames":
        x = time_first(x)
    return Batch(kind.prepare_input(x), y, mask)


def epoch_batches(dataset, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The sample indices of every batch of ``epoch``: the seeded permutation of :func:`batch_order`, or in order
    for data sets that say ``shuffle = False`` (generated tasks whose batch k is drawn from its own seed)."""
    if getattr(dataset, "shuffle", True):
        return batch_order(len(dataset), batch_size, seed, epoch)
    return list(torch.arange(len(dataset)).split(batch_size))


@torch.no_grad()
def evaluate(model, kind: ModelKind, objective: Objective, dataset, batch_size: int,
             world: distributed.World | None = None) -> dict[str, Any]:
    """The objective's metrics on ``dataset`` (in order), with the per-layer activity table where the model has
    spiking layers (:class:`SpikeProbe`). With several processes (``world``), rank r evaluates batches
    r, r + N, ... and the sums and activity counts of all ranks are added (every rank returns the same result)."""
    world = world or distributed.World()
    module = isinstance(model, nn.Module)
    was_training = module and model.training
    if module:
        model.eval()
    sums: dict[str, float] = {}
    n = len(dataset)
    probe = SpikeProbe(model) if module else None
    try:
        if probe is not None:
            probe.__enter__()
        for j, i in enumerate(range(0, n, batch_size)):
            if j % world.size != world.rank:
                continue
            idx = torch.arange(i, min(i + batch_size, n))
            batch = make_batch(kind, *dataset.batch(idx), getattr(dataset, "loss_mask", None))
            for k, v in objective.metric_sums(objective.forward(model, batch), batch).items():
                sums[k] = sums.get(k, 0.0) + v
    finally:
        if probe is not None:
            probe.__exit__(None, None, None)
        if module:
            model.train(was_training)
    if world.distributed:
        every = distributed.gather_objects(sums, world)
        sums = {k: sum(s.get(k, 0.0) for s in every) for k in sorted({k for s in every for k in s})}
        if probe is not None:
            distributed.merge_probe(probe, world)
    weight = sums.pop("_weight", float(max(n, 1)))
    result: dict[str, Any] = {k: v / max(weight, 1.0) for k, v in sums.items()}
    if probe is not None:
        result.update(layers=probe.table(), per_layer=probe.summary_rows(), firing_rates=probe.firing_rates(),
                      mean_firing_rate=probe.mean_firing_rate(), synops_per_sample=probe.total_synops() / max(n, 1))
    return result


@dataclass
class TrainState:
    """What the loop knows at a given moment; callbacks read it (and may set ``stop``)."""

    config: RunConfig
    run_dir: Path
    model: Any
    kind: ModelKind
    rule: LearningRule
    objective: Objective
    optimizer: torch.optim.Optimizer | None
    scheduler: Any
    train_set: Any
    model_kwargs: dict[str, Any]
    limit: int
    epoch: int = 0
    batch: int = 0
    step: int = 0
    resumed: bool = False
    stop: bool = False
    rate: float | None = None
    synops: float | None = None
    epoch_loss: float = 0.0
    epoch_seen: int = 0
    epoch_sums: dict[str, float] = field(default_factory=dict)
    epoch_weight: float = 0.0
    last_metrics: dict[str, float] = field(default_factory=dict)
    extra_summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    callbacks: list[Callback] = field(default_factory=list)
    t_start: float = field(default_factory=time.perf_counter)
    world: distributed.World = field(default_factory=distributed.World)
    share: float = 1.0                  # this rank's part of the current global batch (n_r / n)

    @property
    def metric_name(self) -> str:
        return self.objective.metric_name

    @property
    def higher_is_better(self) -> bool:
        return self.objective.higher_is_better

    def lr(self) -> float | None:
        return self.scheduler.get_last_lr()[0] if self.scheduler is not None else None

    def evaluate(self, dataset) -> dict[str, Any]:
        return evaluate(self.model, self.kind, self.objective, dataset, self.config.train.batch_size * 2, self.world)

    def save(self) -> None:
        """Write the checkpoint of this moment (atomically; rank 0 only: every rank holds the same state)."""
        if not self.world.main:
            return
        save_checkpoint(self.run_dir / CHECKPOINT_FILE, {
            "model": model_entry(self.config.model, self.model_kwargs, self.train_set.input_shape),
            "weights": self.model.state_dict(),
            "rule": {"name": self.rule.name, "state": self.rule.state_dict()},
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "rng": rng_states(),
            "position": {"epoch": self.epoch, "batch": self.batch, "step": self.step, "stopped": self.stop},
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks if cb.state_dict()},
            "config": self.config.to_dict(), "data": self.train_set.describe(), "metrics": self.metrics})


def _check_resume(ckpt: dict[str, Any], config: RunConfig, run_dir: Path) -> None:
    old, new = ckpt.get("config", {}), config.to_dict()
    for table, values in new.items():
        for key, value in values.items():
            before = old.get(table, {}).get(key)
            if (table, key) not in FREE_ON_RESUME and before != value and not (
                    isinstance(before, (list, tuple)) and list(before) == list(value or [])):
                raise ConfigError(f"resume of {run_dir}: key '{table}.{key}' was {before!r} in the checkpoint, now "
                                  f"{value!r}; it cannot change when resuming")


def open_split(config: RunConfig, split: str):
    return open_dataset(config.dataset, split, config.data, config.data_root, config.train.seed)


def train(config: RunConfig, run_dir: str | os.PathLike, resume: bool = False, log: Callable[[str], None] = print,
          callbacks: Sequence[Callback] = (), train_set=None, test_set=None) -> dict[str, Any]:
    """Train ``config`` in ``run_dir`` (layout in the module docstring); returns the summary dict.

    ``resume``: continue from ``run_dir/checkpoint.pt``. Without it an existing checkpoint is an error, so a run is
    never silently overwritten. ``train_set``/``test_set``: data sets to use instead of opening ``config``'s
    (anything with ``__len__``, ``batch(idx)``, ``input_shape``, ``n_classes``, ``describe()``). Process-wide settings
    it changes (torch/numba threads, deterministic algorithms) are restored on return.
    """
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), numba.get_num_threads())
    try:
        return _train(config, Path(run_dir), resume, log, list(callbacks), train_set, test_set)
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
        numba.set_num_threads(saved[2])


def _open_run_dir(run_dir: Path, resume: bool, log) -> dict[str, Any] | None:
    """Clear temp files of a killed write; the checkpoint to resume from (None: start from the beginning)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, SUMMARY_FILE):   # temp files of a killed write
        for stale in stale_temporaries(run_dir, name):
            stale.unlink(missing_ok=True)
    ckpt_path = run_dir / CHECKPOINT_FILE
    if ckpt_path.exists():
        if not resume:
            raise FileExistsError(f"{run_dir} already holds {CHECKPOINT_FILE}: pass --resume to continue it, or use a "
                                  "new run directory")
        return load_checkpoint(ckpt_path)
    if resume:
        log(f"no {CHECKPOINT_FILE} in {run_dir} yet: starting from the beginning")
    return None


def _train(config: RunConfig, run_dir: Path, resume: bool, log, extra_callbacks: list[Callback],
           train_set, test_set) -> dict[str, Any]:
    t_start = time.perf_counter()
    world = distributed.current()
    ckpt, error = None, None
    if world.main:       # rank 0 reads the run directory; the others get its checkpoint (no shared disk needed)
        try:
            ckpt = _open_run_dir(run_dir, resume, log)
        except (FileExistsError, CheckpointError) as exc:
            error = exc
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    ckpt, error = distributed.broadcast_object((ckpt, error), world)
    if error is not None:
        raise error
    if ckpt is not None:
        _check_resume(ckpt, config, run_dir)

    t = config.train
    seed_everything(t.seed, t.threads, t.deterministic)
    train_set = train_set if train_set is not None else open_split(config, "train")
    test_set = test_set if test_set is not None else open_split(config, "test")
    kind = config.kind
    if kind.data != getattr(train_set, "kind", kind.data):
        raise ConfigError(f"model {config.model!r} takes {kind.data} data, but data.dataset {config.dataset!r} is "
                          f"{train_set.kind} data")
    try:
        kwargs = {**kind.resolve(config.model_options, train_set), "seed": t.seed}
        model = kind.construct(kwargs)
    except ValueError as exc:
        raise ConfigError(f"[model] {exc}") from exc
    if t.init_from and ckpt is None:
        start = load_checkpoint(t.init_from)
        if start["model"]["kind"] != config.model:
            raise ConfigError(f"train.init_from {t.init_from}: a {start['model']['kind']!r} checkpoint, not {config.model!r}")
        try:
            model.load_state_dict(start["weights"])
        except (RuntimeError, KeyError) as exc:
            raise ConfigError(f"train.init_from {t.init_from}: its weights do not fit this model ({exc})") from exc
    objective = kind.objective(kwargs, t.spike_penalty)
    rule = config.make_rule()
    try:
        rule.check(model, objective)
    except ValueError as exc:
        raise ConfigError(f"rule.name {config.rule!r} cannot train model.kind {config.model!r}: {exc}") from exc
    if world.distributed and not rule.data_parallel:
        raise ConfigError(f"rule.name {config.rule!r} cannot train on {world.size} processes: its updates are not "
                          "gradients that averaging across processes reproduces (run it in one process, --nproc 1)")
    steps_per_epoch = math.ceil(len(train_set) / t.batch_size)
    total = steps_per_epoch * t.epochs
    optimizer, scheduler = build_optimizer(config, rule, model, steps_per_epoch, total)
    averager = None
    if world.distributed:
        if optimizer is None:
            raise ConfigError(f"rule.name {config.rule!r} with model.kind {config.model!r} has no optimizer whose "
                              f"gradients {world.size} processes could average: run it in one process")
        averager = distributed.GradientAverager(optimizer, world)   # before the rule's own step hooks (clipping)
    rule.setup(model, optimizer, t.seed)
    limit = min(total, t.max_steps) if t.max_steps else total
    state = TrainState(config, run_dir, model, kind, rule, objective, optimizer, scheduler, train_set, kwargs, limit,
                       t_start=t_start, world=world)
    if ckpt is not None:
        model.load_state_dict(ckpt["weights"])
        if optimizer is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
        rule.load_state_dict(ckpt["rule"].get("state", {}))
        set_rng_states(ckpt["rng"])
        state.epoch, state.batch, state.step = (ckpt["position"][k] for k in ("epoch", "batch", "step"))
        state.stop = bool(ckpt["position"].get("stopped", False))     # an early stop stays stopped
        state.resumed = True
        if world.main:
            log(f"resumed {run_dir} at step {state.step} (epoch {state.epoch}, batch {state.batch})")
    distributed.broadcast_module(model, world)          # the same weights on every rank, whatever built them
    if world.main:
        write_config(config, run_dir / CONFIG_FILE)

    callbacks: list[Callback] = [FiringRateProbe(t.log_synops)]
    if world.main:
        callbacks.append(MetricsLog(run_dir / METRICS_FILE))
    if t.keep_best:
        callbacks.append(KeepBest(open_split(config, "val"), t.patience))
    callbacks += [Checkpointer(t.checkpoint_every), *extra_callbacks]
    if world.main:
        callbacks.append(ProgressBar(t.progress, f"train {config.model} ({config.rule})"
                                     + (f" x{world.size} processes" if world.distributed else "")))
    state.callbacks = callbacks
    if ckpt is not None:
        for cb in callbacks:
            cb.load_state_dict(ckpt.get("callbacks", {}).get(type(cb).__name__, {}))
    if isinstance(model, nn.Module):
        model.train()
    for cb in callbacks:
        cb.on_train_start(state)
    try:
        while state.epoch < t.epochs and state.step < limit and not state.stop:
            batches = epoch_batches(train_set, t.batch_size, t.seed, state.epoch)
            state.epoch_loss, state.epoch_seen, state.epoch_sums, state.epoch_weight = 0.0, 0, {}, 0.0
            while state.batch < len(batches) and state.step < limit:
                indices, state.share = world.shard(batches[state.batch])
                if averager is not None:
                    averager.weight = state.share
                batch = make_batch(kind, *train_set.batch(indices), getattr(train_set, "loss_mask", None))
                for cb in callbacks:
                    cb.on_step_start(state)
                out: StepOutput = rule.train_step(model, batch, objective)
                if scheduler is not None:
                    scheduler.step()
                state.batch += 1
                state.step += 1
                counts = state.share > 0       # a rank that ran a stand-in sample (weight 0) adds nothing
                sums = {"_loss": out.loss * batch.size * counts, "_seen": float(batch.size * counts)}
                if out.output is not None:
                    metric = objective.metric_sums(out.output, batch)
                    metric.setdefault("_weight", float(batch.size))
                    sums.update({k: v * counts for k, v in metric.items()})
                sums = distributed.reduce_sums(sums, world)
                loss_sum, seen = sums.pop("_loss"), int(sums.pop("_seen"))
                state.epoch_loss += loss_sum
                state.epoch_seen += seen
                if world.distributed:      # the log reports the global batch's loss
                    out = StepOutput(loss_sum / max(seen, 1), out.output, out.extra)
                state.last_metrics = {}
                if out.output is not None:
                    weight = sums.pop("_weight")
                    state.last_metrics = {k: v / max(weight, 1.0) for k, v in sums.items() if k != "loss"}
                    state.epoch_weight += weight
                    for k, v in sums.items():
                        state.epoch_sums[k] = state.epoch_sums.get(k, 0.0) + v
                for cb in callbacks:
                    cb.on_step_end(state, out)
            if state.batch >= len(batches):
                state.epoch, state.batch = state.epoch + 1, 0
                rule.end_epoch(model, state.epoch)
                for cb in callbacks:
                    cb.on_epoch_end(state)
    finally:
        for cb in callbacks:
            cb.on_train_end(state)
        if averager is not None:
            averager.remove()
    result = state.evaluate(test_set)
    state.metrics = {"test": {k: v for k, v in result.items() if k not in ("layers", "per_layer")}}
    state.save()
    metric = objective.metric_name
    summary = {   # also a run summary of the comparison schema (spikes.reports.summary): spikes compare reads it
        "task": config.dataset, "metric": result.get(metric), "higher_is_better": objective.higher_is_better,
        "per_layer": result.get("per_layer", []), "label": f"{config.model} ({config.rule})",
        "spike_penalty": t.spike_penalty,
        "completed": state.epoch >= t.epochs or state.stop, "stopped_early": state.stop and state.epoch < t.epochs,
        "steps": state.step, "epochs_done": state.epoch, "model": config.model,
        "rule": config.rule, "dataset": config.dataset, "n_train": len(train_set), "n_test": len(test_set),
        "n_parameters": sum(p.numel() for p in parameters(model)) or _count_state(model),
        "metric_name": metric, "test_metric": result.get(metric), "test_loss": result.get("loss"),
        **{f"test_{k}": v for k, v in result.items() if k not in ("layers", "per_layer", "firing_rates",
                                                                   "mean_firing_rate", "synops_per_sample", "loss")},
        "mean_firing_rate": result.get("mean_firing_rate"), "firing_rates": result.get("firing_rates", {}),
        "synops_per_sample": result.get("synops_per_sample"), "layers": result.get("layers", []),
        "wall_time_s": time.perf_counter() - t_start, "config": config.to_dict(),
        "learning": rule.measurements(model), **state.extra_summary,
    }
    if world.main:
        atomic_write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def _count_state(model) -> int:
    """Learned numbers of a model that is not an ``nn.Module`` (the tensors of its state dict)."""
    state = model.state_dict()
    return int(sum(v.numel() for vs in state.values() for v in (vs if isinstance(vs, list) else [vs])
                   if isinstance(v, torch.Tensor)))
