"""Evidence accumulation ("cue") task of e-prop (Bellec et al. 2020, Fig. 3), after the authors' generator.

40 input channels in 4 groups of ``n_per_group`` = 10: left cue, right cue, recall, noise. A trial of
``T = n_cues t_interval + t_delay + t_recall`` ms (7 x 150 + 1050 + 150 = 2250 ms by default):

- cue k (k = 0..n_cues-1) occupies [k t_interval + (t_interval - t_cue), (k+1) t_interval): its group
  (left or right) fires Poisson at ``f0`` = 40 Hz; each trial draws P(left) = ``p_group`` or 1 - p_group;
- the recall group fires at ``f0`` during the last ``t_recall`` ms, the noise group at ``f_noise`` = 10 Hz
  throughout;
- label 1 if there were more right cues than left ones (``n_cues`` odd: no ties), else 0; the loss and the
  decision use the recall window (``mask``).

Step ``dt`` ms: every duration becomes ``round(duration / dt)`` steps and a rate ``f`` a spike probability
``f dt / 1000`` per step, so ``dt > 1`` gives a shortened but otherwise identical task.

:class:`CueSet` makes the task a data set of the trainer (``spikes.training.loop.train``): blocks of
``batch_size`` trials, block ``k`` drawn by ``cue_task`` from its own seed, in order.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import torch


@dataclass(frozen=True)
class CueTaskConfig:
    n_cues: int = 7
    t_cue: float = 100.0
    t_interval: float = 150.0
    t_delay: float = 1050.0
    t_recall: float = 150.0
    f0: float = 40.0
    f_noise: float = 10.0
    p_group: float = 0.3
    n_per_group: int = 10
    dt: float = 1.0

    def __post_init__(self) -> None:
        if self.n_cues < 1 or self.n_cues % 2 == 0:
            raise ValueError(f"CueTaskConfig.n_cues must be odd and >= 1 (no ties), got {self.n_cues}")
        if not 0 < self.t_cue <= self.t_interval:
            raise ValueError(f"CueTaskConfig.t_cue must be in (0, t_interval={self.t_interval}], got {self.t_cue}")
        if self.dt <= 0 or self.t_delay < 0 or self.t_recall < self.dt:
            raise ValueError(f"CueTaskConfig: need dt > 0, t_delay >= 0, t_recall >= dt; got dt={self.dt}, "
                             f"t_delay={self.t_delay}, t_recall={self.t_recall}")
        if max(self.f0, self.f_noise) * self.dt / 1000.0 > 1.0:
            raise ValueError(f"CueTaskConfig: rate x dt exceeds one spike per step (f0={self.f0} Hz, dt={self.dt} ms)")
        if not 0.0 <= self.p_group <= 1.0:
            raise ValueError(f"CueTaskConfig.p_group must be a probability, got {self.p_group}")

    def steps(self, duration_ms: float) -> int:
        return int(round(duration_ms / self.dt))

    @property
    def n_in(self) -> int:
        return 4 * self.n_per_group

    @property
    def T(self) -> int:
        return self.n_cues * self.steps(self.t_interval) + self.steps(self.t_delay) + self.steps(self.t_recall)


class CueBatch(NamedTuple):
    """``x`` (T, B, 40) float32 spikes, ``labels`` (B,) int64, ``mask`` (T,) float32 recall steps, ``cues``
    (B, n_cues) int64 (0 left, 1 right)."""

    x: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor
    cues: torch.Tensor


def recall_mask(cfg: CueTaskConfig) -> torch.Tensor:
    """``(T,)`` float32: 1 on the last ``steps(t_recall)`` steps (where the loss and the decision count), else 0."""
    mask = torch.zeros(cfg.T, dtype=torch.float32)
    mask[cfg.T - cfg.steps(cfg.t_recall):] = 1.0
    return mask


def cue_task(batch: int, cfg: CueTaskConfig = CueTaskConfig(), seed: int = 0) -> CueBatch:
    """A batch of cue-task trials drawn from ``seed`` (same seed, same batch)."""
    if batch < 1:
        raise ValueError(f"cue_task batch must be >= 1, got {batch}")
    rng = np.random.default_rng(seed)
    T, n, c = cfg.T, cfg.n_per_group, cfg
    p_left = np.where(rng.random(batch) < 0.5, c.p_group, 1.0 - c.p_group)
    cues = (rng.random((batch, c.n_cues)) >= p_left[:, None]).astype(np.int64)  # 1 = right
    rate = np.zeros((T, batch, 4 * n), dtype=np.float64)
    interval, cue_len = c.steps(c.t_interval), c.steps(c.t_cue)
    for k in range(c.n_cues):
        start = (k + 1) * interval - cue_len
        for side in (0, 1):
            rate[start:start + cue_len, cues[:, k] == side, side * n:(side + 1) * n] = c.f0
    recall = c.steps(c.t_recall)
    rate[T - recall:, :, 2 * n:3 * n] = c.f0
    rate[:, :, 3 * n:] = c.f_noise
    x = (rng.random(rate.shape) < rate * c.dt / 1000.0).astype(np.float32)
    labels = (cues.sum(1) > c.n_cues // 2).astype(np.int64)
    return CueBatch(torch.from_numpy(x), torch.from_numpy(labels), recall_mask(cfg), torch.from_numpy(cues))


SEED_STRIDE, TEST_OFFSET = 100003, 99991


class CueSet:
    """The cue task as a data set of the trainer: ``n_batches`` blocks of ``batch_size`` trials, in order.

    Block ``k`` is ``cue_task(batch_size, cfg, seed=s_k)`` with ``s_k = seed * 100003 + k`` for ``split =
    "train"`` and ``s_k = seed * 100003 + 99991 + k`` for ``"test"`` (disjoint draws while ``n_batches <=
    99991``), so a trainer with ``train.batch_size = batch_size`` sees exactly the batches of e-prop's training
    loop (batch k from ``seed * 100003 + k``, the test batch from ``seed * 100003 + 99991``). Trial ``i`` is trial
    ``i % batch_size`` of block ``i // batch_size``, so any other batch size reads the same trials. ``limit > 0``
    keeps the first ``limit`` trials.

    Trainer protocol: ``batch(idx) -> (x (B, T, n_in) float32 spikes, labels (B,) int64)``, sample-first like
    event frames (``kind = "frames"``: the trainer makes it time first ``(T, B, n_in)``, as the ``rsnn`` kind
    takes it); ``shuffle = False`` (the blocks are the order); ``loss_mask`` the recall window ``(T,)``;
    ``input_shape = (n_in,)``, two classes (label 1: more right cues).
    """

    kind = "frames"
    shuffle = False
    n_classes = 2
    classes = ["left", "right"]

    def __init__(self, n_batches: int, batch_size: int, cfg: CueTaskConfig = CueTaskConfig(), seed: int = 0,
                 split: str = "train", limit: int = 0):
        if split not in ("train", "test"):
            raise ValueError(f"CueSet split must be 'train' or 'test', got {split!r}")
        if int(n_batches) != n_batches or not 1 <= n_batches <= TEST_OFFSET:
            raise ValueError(f"CueSet n_batches must be a whole number in [1, {TEST_OFFSET}] (more would reuse the "
                             f"test draws), got {n_batches}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"CueSet batch_size must be a whole number >= 1, got {batch_size}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"CueSet seed must be a whole number >= 0, got {seed}")
        if limit < 0:
            raise ValueError(f"CueSet limit must be >= 0, got {limit}")
        self.n_batches, self.batch_size, self.seed = int(n_batches), int(batch_size), int(seed)
        self.cfg, self.split = cfg, split
        self.n = min(limit, self.n_batches * self.batch_size) if limit else self.n_batches * self.batch_size
        self.input_shape: tuple[int, ...] = (cfg.n_in,)
        self.loss_mask = recall_mask(cfg)
        self._block: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return self.n

    def block_seed(self, k: int) -> int:
        """The seed of block ``k`` (class docstring)."""
        return self.seed * SEED_STRIDE + (TEST_OFFSET if self.split == "test" else 0) + k

    def block(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Block ``k``: ``(x (batch_size, T, n_in), labels (batch_size,))`` (the last block drawn is kept)."""
        if self._block is None or self._block[0] != k:
            b = cue_task(self.batch_size, self.cfg, seed=self.block_seed(k))
            self._block = (k, b.x.transpose(0, 1), b.labels)
        return self._block[1], self._block[2]

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        """Trials ``idx``: ``(x (len(idx), T, n_in), labels (len(idx),))``."""
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= self.n):
            raise IndexError(f"cue task ({self.split}): trial indices must lie in [0, {self.n}), got "
                             f"{int(idx.min())}..{int(idx.max())}")
        blocks = idx // self.batch_size
        x = torch.empty(len(idx), self.cfg.T, self.cfg.n_in)
        y = torch.empty(len(idx), dtype=torch.long)
        for k in torch.unique(blocks).tolist():
            sel = blocks == k
            xk, yk = self.block(k)
            x[sel], y[sel] = xk[idx[sel] - k * self.batch_size], yk[idx[sel] - k * self.batch_size]
        return x, y

    def describe(self) -> dict[str, Any]:
        return {"name": "cue", "split": self.split, "seed": self.seed, "n_batches": self.n_batches,
                "batch_size": self.batch_size, "len": len(self), "task": asdict(self.cfg),
                "block_seeds": f"seed * {SEED_STRIDE} + {TEST_OFFSET if self.split == 'test' else 0} + k",
                "input_shape": list(self.input_shape), "n_classes": self.n_classes, "classes": list(self.classes),
                "T": self.cfg.T}
