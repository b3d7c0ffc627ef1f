"""Apply a stateless layer (Linear, Conv2d, pooling, upsampling) to every step of a sequence at once."""
from __future__ import annotations

import torch
from torch import nn


class TimeDistributed(nn.Module):
    """``y[t] = module(x[t])`` for all t in one call: ``(T, B, ...)`` is folded to ``(T*B, ...)``.

    One large matmul or conv over time x batch replaces T small ones; the result is the same. A channels-last
    output gets its gradient in channels-last memory too.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"TimeDistributed({type(self.module).__name__}) needs (T, B, ...) input, got shape {tuple(x.shape)}")
        t, b = x.shape[:2]
        y = self.module(x.reshape(t * b, *x.shape[2:]))
        if y.requires_grad and y.dim() == 4 and not y.is_contiguous() and y.is_contiguous(memory_format=torch.channels_last):
            y.register_hook(_channels_last)
        return y.reshape(t, b, *y.shape[1:])


def _channels_last(g: torch.Tensor) -> torch.Tensor:
    """The gradient of a channels-last output in the same layout: torch's backward kernels pick their path from
    the gradient's layout and convert the other tensors to it (avg_pool2d's backward copies its whole
    channels-last input gradient twice for a contiguous output gradient)."""
    return g.contiguous(memory_format=torch.channels_last)
