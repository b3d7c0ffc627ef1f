"""Apply a stateless layer (Linear, Conv2d, pooling, upsampling) to every step of a sequence at once."""
from __future__ import annotations

import torch
from torch import nn


class TimeDistributed(nn.Module):
    """``y[t] = module(x[t])`` for all t in one call: ``(T, B, ...)`` is folded to ``(T*B, ...)``.

    One large matmul or conv over time x batch replaces T small ones; the result is the same.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"TimeDistributed({type(self.module).__name__}) needs (T, B, ...) input, got shape {tuple(x.shape)}")
        t, b = x.shape[:2]
        y = self.module(x.reshape(t * b, *x.shape[2:]))
        return y.reshape(t, b, *y.shape[1:])
