"""Signed working-memory tasks for sequential-learning studies: how much a task relies on its input or on the
network's own dynamics is one parameter, ``input_drive``.

Task ``k`` of ``n_tasks`` (task A is k = 0, task B is k = 1) uses its own input channel and its own output, so two
tasks are orthogonal in input and output. A trial of ``T = fixation + cue + response`` steps (5 + 5 + 30):

- steps ``[0, fixation)``: no input;
- steps ``[fixation, fixation + cue)``: the cue ``s = +1`` or ``-1`` (each with probability 1/2) on channel ``k``;
- the response window ``[fixation + cue, T)``: the cue stays on at the amplitude ``input_drive * s``; the network
  must report ``s`` on every step of the window.

``input_drive = 1``: the full cue is present whenever it must be reported (a purely input-driven task, a reflex);
``input_drive = 0``: it must be held through the whole window by the network's own dynamics (a memory, i.e. a
pair of fixed points); in between, a weaker tonic input helps the dynamics hold it. At every setting the state the
network reports from is a fixed point of its dynamics under the window's constant input ``input_drive * s``, so
the fixed points that carry the task are defined at every drive (a cue switched off part-way through the window
would leave the state between fixed points). Every channel carries Gaussian noise of std ``noise`` on every step.

Encodings: analog (``spikes_per_channel = 0``: ``n_tasks`` channels, value ``s`` times the cue's amplitude) for rate
networks, or Poisson spikes for spiking ones (``spikes_per_channel = n``: for each task a ``+`` and a ``-``
population of n inputs; the cue's population fires with probability ``spike_prob`` per step during the cue and
``input_drive * spike_prob`` during the response window, every input with ``background_prob``; no Gaussian noise).

Label ``y = 2 k + (s > 0)`` (classes ``A-``, ``A+``, ``B-``, ``B+``, ...), so a task's trials are told apart by
their label; ``loss_mask`` is the response window ``(T,)``. :class:`MemorySet` is the task as a data set of the
trainer (``spikes train --dataset memory``, ``[data] memory_task``, ``input_drive``, ``memory_spikes``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

TRIALS = {"train": 1024, "test": 256}     # default split sizes


@dataclass(frozen=True)
class MemoryTaskConfig:
    """One signed working-memory task (module docstring)."""

    task: int = 0
    n_tasks: int = 2
    input_drive: float = 0.0
    fixation: int = 5
    cue: int = 5
    response: int = 30
    noise: float = 0.05
    spikes_per_channel: int = 0
    spike_prob: float = 0.5
    background_prob: float = 0.02

    def __post_init__(self) -> None:
        if not 0 <= self.task < self.n_tasks:
            raise ValueError(f"MemoryTaskConfig.task must be in [0, n_tasks={self.n_tasks}), got {self.task}")
        if not 0.0 <= self.input_drive <= 1.0:
            raise ValueError(f"MemoryTaskConfig.input_drive must be in [0, 1], got {self.input_drive}")
        if self.fixation < 0 or self.cue < 1 or self.response < 1:
            raise ValueError(f"MemoryTaskConfig: need fixation >= 0, cue >= 1, response >= 1; got {self.fixation}, "
                             f"{self.cue}, {self.response}")
        if self.noise < 0 or self.spikes_per_channel < 0:
            raise ValueError(f"MemoryTaskConfig: noise and spikes_per_channel must be >= 0, got {self.noise}, "
                             f"{self.spikes_per_channel}")
        if not (0.0 <= self.background_prob <= 1.0 and 0.0 <= self.spike_prob <= 1.0):
            raise ValueError(f"MemoryTaskConfig: spike_prob and background_prob are probabilities, got "
                             f"{self.spike_prob}, {self.background_prob}")

    @property
    def T(self) -> int:
        return self.fixation + self.cue + self.response

    @property
    def n_in(self) -> int:
        return self.n_tasks if not self.spikes_per_channel else 2 * self.n_tasks * self.spikes_per_channel

    def cue_amplitude(self) -> np.ndarray:
        """``(T,)`` float: the cue's amplitude per step (1 during the cue, ``input_drive`` in the response window)."""
        amp = np.zeros(self.T)
        amp[self.fixation:self.fixation + self.cue] = 1.0
        amp[self.fixation + self.cue:] = self.input_drive
        return amp

    def response_mask(self) -> np.ndarray:
        """``(T,)`` bool: the response window (where the loss and the decision are taken)."""
        mask = np.zeros(self.T, bool)
        mask[self.fixation + self.cue:] = True
        return mask


def task_name(k: int) -> str:
    """``A``, ``B``, ... (``T26`` and up past the alphabet)."""
    return chr(ord("A") + k) if k < 26 else f"T{k}"


def memory_trials(n: int, cfg: MemoryTaskConfig, seed: int = 0,
                  stream: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` trials of ``cfg``: ``x`` float32 ``(n, T, n_in)``, labels ``y`` int64 ``(n,)`` (module docstring);
    a pure function of ``(n, cfg, seed, stream)`` (the random stream is ``[seed, stream, task, n_tasks]``)."""
    rng = np.random.default_rng([int(seed), int(stream), cfg.task, cfg.n_tasks])
    positive = rng.random(n) < 0.5
    sign = np.where(positive, 1.0, -1.0)
    amp = cfg.cue_amplitude()
    if not cfg.spikes_per_channel:
        x = rng.normal(0.0, cfg.noise, (n, cfg.T, cfg.n_tasks)) if cfg.noise else np.zeros((n, cfg.T, cfg.n_tasks))
        x[:, :, cfg.task] += sign[:, None] * amp[None]
    else:
        m = cfg.spikes_per_channel
        x = rng.random((n, cfg.T, cfg.n_in)) < cfg.background_prob
        burst = rng.random((n, cfg.T, m)) < cfg.spike_prob * amp[None, :, None]
        for i in range(n):                       # population (task, sign) at inputs [(2 task + positive) m, ... + m)
            lo = (2 * cfg.task + int(positive[i])) * m
            x[i, :, lo:lo + m] |= burst[i]
    y = 2 * cfg.task + positive.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)


class MemorySet:
    """A signed working-memory task as a data set of the trainer: ``batch(idx) -> (x (B, T, n_in), y (B,))``;
    ``kind = "frames"`` (time-major batches for the recurrent models), ``loss_mask`` the response window,
    ``n_classes = 2 n_tasks``. Train and test trials come from different seeds (``[seed, 0]`` and ``[seed, 1]``)."""

    kind = "frames"

    def __init__(self, cfg: MemoryTaskConfig = MemoryTaskConfig(), split: str = "train", seed: int = 0, n: int = 0):
        if split not in TRIALS:
            raise ValueError(f"MemorySet split must be one of {sorted(TRIALS)}, got {split!r}")
        if n < 0:
            raise ValueError(f"MemorySet n must be >= 0 (0: {TRIALS[split]}), got {n}")
        self.cfg, self.split, self.seed = cfg, split, int(seed)
        self.n = n or TRIALS[split]
        self.x, self.y = memory_trials(self.n, cfg, self.seed, stream=int(split == "test"))
        self.input_shape: tuple[int, ...] = (cfg.n_in,)
        self.n_classes = 2 * cfg.n_tasks
        self.classes = [f"{task_name(k)}{s}" for k in range(cfg.n_tasks) for s in "-+"]
        self.loss_mask = torch.from_numpy(cfg.response_mask())

    def __len__(self) -> int:
        return self.n

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        return self.x[idx], self.y[idx]

    def describe(self) -> dict[str, Any]:
        return {"name": "memory", "split": self.split, "seed": self.seed, "len": self.n, "task": asdict(self.cfg),
                "input_shape": list(self.input_shape), "n_classes": self.n_classes, "classes": list(self.classes),
                "T": self.cfg.T}
