"""Training callbacks: the metrics log, the progress bar, checkpoints, firing-rate probes, best-epoch keeping.

The trainer (:mod:`spikes.training.loop`) calls, on every callback in order: ``on_train_start(state)`` (after a
resume too), ``on_step_start(state)`` before and ``on_step_end(state, step_output)`` after each step, ``on_epoch_end(state)`` after each epoch, and
``on_train_end(state)`` (also when the run stops early or fails). ``state`` is the trainer's
:class:`~spikes.training.loop.TrainState`; a callback may set ``state.stop = True`` to end the run. A callback
whose ``state_dict()`` is not empty has it saved in every checkpoint (under its class name) and handed back to
``load_state_dict`` on a resume, before ``on_train_start``.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from spikes.io import atomic_write_text
from spikes.learning.rule import StepOutput
from spikes.metrics.probe import SpikeProbe, is_spiking
from spikes.training.distributed import reduce_sums


class Callback:
    """Base class: every hook does nothing."""

    def on_train_start(self, state) -> None: ...

    def on_step_start(self, state) -> None: ...

    def on_step_end(self, state, out: StepOutput) -> None: ...

    def on_epoch_end(self, state) -> None: ...

    def on_train_end(self, state) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class FiringRateProbe(Callback):
    """Spikes per neuron per step over the spiking layers, measured on every training batch (``state.rate``); with
    ``synops``, every layer is probed and the batch's synaptic operations per sample go to ``state.synops`` too
    (the probe's definition: nonzero inputs times the synapses each reaches; it costs a little per step)."""

    def __init__(self, synops: bool = False):
        self.probe: SpikeProbe | None = None
        self.synops = synops

    def on_train_start(self, state) -> None:
        if hasattr(state.model, "modules"):
            spiking = [name for name, m in state.model.named_modules() if is_spiking(m)]
            if spiking:
                self.probe = SpikeProbe(state.model, layers=None if self.synops else spiking).__enter__()

    def on_step_start(self, state) -> None:
        if self.probe is not None:   # counts of this step only (not a validation pass between steps)
            self.probe.reset()

    def on_step_end(self, state, out: StepOutput) -> None:
        seen = self.probe is not None and any(st.calls for st in self.probe.stats.values())
        world = getattr(state, "world", None)
        if seen and world is not None and world.distributed:    # the global batch's counts
            neurons = [st for st in self.probe.stats.values() if st.role == "neuron"]
            counts = float(state.share > 0)
            total = reduce_sums({"spikes": counts * sum(st.spikes for st in neurons),
                                 "numel": counts * sum(st.out_numel for st in neurons),
                                 "synops": counts * self.probe.total_synops(),
                                 "samples": counts * self.probe.samples}, world)
            state.rate = total["spikes"] / total["numel"] if total["numel"] else 0.0
            if self.synops:
                state.synops = total["synops"] / max(total["samples"], 1)
        elif seen:
            state.rate = self.probe.mean_firing_rate()
            if self.synops:
                state.synops = self.probe.total_synops() / max(self.probe.samples, 1)
        else:   # rules that step the layers themselves (e-prop) report the rate of the batch
            state.rate = out.extra.get("rate_per_step")

    def on_train_end(self, state) -> None:
        if self.probe is not None:
            self.probe.__exit__(None, None, None)
            self.probe = None


class MetricsLog(Callback):
    """``metrics.jsonl``: one JSON object per step, appended and flushed as it happens:
    ``{step, epoch, batch, loss, <metric sums / batch size>, firing_rate, lr, time_s}``. On a resume, lines past the
    checkpoint's step (a killed run may have logged them) are dropped first."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.file = None

    def on_train_start(self, state) -> None:
        if state.resumed:
            keep = []
            if self.path.exists():
                for line in self.path.read_text().splitlines():
                    try:
                        if json.loads(line)["step"] <= state.step:
                            keep.append(line)
                    except (ValueError, KeyError):
                        break  # a half-written last line
            atomic_write_text(self.path, "".join(line + "\n" for line in keep))
        else:
            self.path.unlink(missing_ok=True)
        self.file = open(self.path, "a")

    def on_step_end(self, state, out: StepOutput) -> None:
        record = {"step": state.step, "epoch": state.epoch, "batch": state.batch, "loss": out.loss,
                  **{k: v for k, v in state.last_metrics.items()}, **out.extra, "firing_rate": state.rate,
                  **({} if state.synops is None else {"synops_per_sample": state.synops}),
                  "lr": state.lr(), "time_s": round(time.perf_counter() - state.t_start, 3)}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def on_train_end(self, state) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class ProgressBar(Callback):
    """A tqdm bar over all steps, with the running loss, metric and firing rate of the epoch."""

    def __init__(self, enabled: bool = True, desc: str = "train"):
        self.enabled, self.desc = enabled, desc
        self.bar = None

    def on_train_start(self, state) -> None:
        self.bar = tqdm(total=state.limit, initial=min(state.step, state.limit), disable=not self.enabled,
                        desc=self.desc, unit="step", dynamic_ncols=True)

    def on_step_end(self, state, out: StepOutput) -> None:
        self.bar.update(1)
        post = {"epoch": state.epoch, "loss": f"{state.epoch_loss / max(state.epoch_seen, 1):.3f}"}
        if state.metric_name in state.epoch_sums:
            post[state.metric_name[:3]] = f"{state.epoch_sums[state.metric_name] / max(state.epoch_weight, 1):.3f}"
        if state.rate is not None:
            post["fr"] = f"{state.rate:.3f}"
        self.bar.set_postfix(**post)

    def on_train_end(self, state) -> None:
        if self.bar is not None:
            self.bar.close()


class Checkpointer(Callback):
    """Writes the checkpoint every ``every`` steps (0: epoch ends only), at every epoch end and at the end."""

    def __init__(self, every: int):
        self.every = every

    def on_step_end(self, state, out: StepOutput) -> None:
        if self.every and state.step % self.every == 0 and state.step < state.limit:
            state.save()

    def on_epoch_end(self, state) -> None:
        state.save()


class KeepBest(Callback):
    """Evaluates the validation split after every epoch; keeps the weights of the best epoch (ties go to the later
    epoch) and restores them at the end; stops after ``patience`` epochs without improvement (0 = never)."""

    def __init__(self, val_set, patience: int = 0):
        self.val_set, self.patience = val_set, patience
        self.best: float | None = None
        self.best_state: Any = None
        self.since = 0
        self.history: list[float] = []

    def on_epoch_end(self, state) -> None:
        value = state.evaluate(self.val_set)[state.metric_name]
        self.history.append(value)
        better = self.best is None or (value > self.best if state.higher_is_better else value < self.best)
        tie = self.best is not None and value == self.best
        if better or tie:
            self.since = 0 if better else self.since + 1
            self.best, self.best_state = value, copy.deepcopy(state.model.state_dict())
        else:
            self.since += 1
        if self.patience and self.since >= self.patience:
            state.stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_state": self.best_state, "since": self.since, "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.best, self.best_state = state["best"], state["best_state"]
            self.since, self.history = state["since"], list(state["history"])

    def on_train_end(self, state) -> None:
        if self.best_state is not None:
            state.model.load_state_dict(self.best_state)
            state.extra_summary["val_history"] = self.history
            state.extra_summary["val_best"] = self.best
