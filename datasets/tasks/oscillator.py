"""The oscillation (central pattern generator) task of Yoder, Anderson, Wang & Izquierdo (2022) as a data set of the
trainer: a network's lifetime cut into segments.

There is no data to learn from: a recurrent network should oscillate on its own, and its fitness is how much its
outputs move, ``mean_{t, i} |o_i[t] - o_i[t-1]| / dt`` (the objective's). Each sample is one segment of
``segment_steps`` steps of zero external input ``x (segment_steps, n_in)``; the trainer hands them to the rule in
order (``shuffle = False``), so a lifetime of ``n_segments`` segments is one epoch. The test set is one longer
segment on which the learned network (its centre weights) runs from rest.
"""
from __future__ import annotations

from typing import Any

import torch


class OscillatorSet:
    """``n_segments`` segments of ``segment_steps`` zero-input steps (module docstring); ``batch(idx) -> (x (B, T,
    n_in), y (B,) zeros)``."""

    kind = "sequence"
    shuffle = False
    n_classes = 0
    classes: list[str] = []

    def __init__(self, n_segments: int, segment_steps: int, n_in: int = 1, name: str = "oscillator",
                 split: str = "train"):
        if n_segments < 1 or segment_steps < 1 or n_in < 1:
            raise ValueError(f"OscillatorSet: n_segments, segment_steps and n_in must be >= 1, got {n_segments}, "
                             f"{segment_steps}, {n_in}")
        self.n_segments, self.segment_steps, self.n_in = n_segments, segment_steps, n_in
        self.name, self.split = name, split
        self.input_shape = (n_in,)

    def __len__(self) -> int:
        return self.n_segments

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(idx).reshape(-1)
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= self.n_segments):
            raise IndexError(f"{self.name}: segment index out of range 0..{self.n_segments - 1}")
        b = len(idx)
        return torch.zeros(b, self.segment_steps, self.n_in, dtype=torch.float64), torch.zeros(b, dtype=torch.long)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "split": self.split, "len": len(self), "segment_steps": self.segment_steps,
                "input_shape": list(self.input_shape), "n_classes": 0, "classes": []}
