"""Apply a stateless layer (Linear, Conv2d, pooling, upsampling) to every step of a sequence at once."""
from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from spikes import kernels
from spikes.kernels import buffers
from spikes.kernels.numba_pool import avg_pool_backward, avg_pool_backward_nchw, avg_pool_forward_nchw


class TimeDistributed(nn.Module):
    """``y[t] = module(x[t])`` for all t in one call: ``(T, B, ...)`` is folded to ``(T*B, ...)``.

    One large matmul or conv over time x batch replaces T small ones; the result is the same. A channels-last
    output gets its gradient in channels-last memory too. A non-overlapping ``nn.AvgPool2d`` (stride = kernel,
    no padding) of channels-last input, e.g. spikes after ``EventConv2d``, runs as a compiled kernel.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"TimeDistributed({type(self.module).__name__}) needs (T, B, ...) input, got shape {tuple(x.shape)}")
        t, b = x.shape[:2]
        images = x.reshape(t * b, *x.shape[2:])
        window = _compiled_pool_window(self.module, images)
        if window is not None:
            y = _AvgPoolFunction.apply(images, window)
        else:
            y = self.module(images)
        if y.requires_grad and y.dim() == 4 and not y.is_contiguous() and y.is_contiguous(memory_format=torch.channels_last):
            y.register_hook(_channels_last)
        return y.reshape(t, b, *y.shape[1:])


def _channels_last(g: torch.Tensor) -> torch.Tensor:
    """The gradient of a channels-last output in the same layout: torch's backward kernels pick their path from
    the gradient's layout and convert the other tensors to it (avg_pool2d's backward copies its whole
    channels-last input gradient twice for a contiguous output gradient)."""
    return g.contiguous(memory_format=torch.channels_last)


def _compiled_pool_window(module: nn.Module, images: torch.Tensor) -> tuple[int, int] | None:
    """(kh, kw) when ``module`` is a non-overlapping ``nn.AvgPool2d`` (stride = kernel, no padding, floor mode)
    and ``images`` are channels-last on the CPU with the compiled kernels available, else None."""
    if type(module) is not nn.AvgPool2d or not kernels.available():
        return None
    k, st, pad = (_pair(v) for v in (module.kernel_size, module.stride or module.kernel_size, module.padding))
    if (k != st or pad != (0, 0) or module.ceil_mode or module.divisor_override is not None or images.dim() != 4
            or images.device.type != "cpu" or images.dtype not in (torch.float32, torch.float64)
            or images.is_contiguous() or not images.is_contiguous(memory_format=torch.channels_last)
            or images.shape[2] < k[0] or images.shape[3] < k[1]):
        return None
    return k


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class _AvgPoolFunction(torch.autograd.Function):
    """Channels-last (N, C, H, W) -> contiguous (N, C, H // kh, W // kw) average pooling
    (``spikes.kernels.numba_pool``). torch's backward zero-fills a fresh input gradient and, for a contiguous
    output gradient, converts it to NCHW and back; this one writes each entry once into a reused buffer. The
    output is contiguous (NCHW) so that the usual next step, flattening for a Linear, needs no copy, and the
    gradient is read in whatever layout it arrives (measured, case c of ``benchmarks/bench_training.py``: the
    flatten copy and a channels-last copy of the gradient cost 16 + 22 ms of a 390 ms step)."""

    @staticmethod
    def forward(ctx, images, window):  # type: ignore[override]
        kernels.set_threads()
        kh, kw = window
        n, c, h, w = images.shape
        xn = images.detach().permute(0, 2, 3, 1).numpy()
        out = buffers.empty((n, c, h // kh, w // kw), xn.dtype)
        avg_pool_forward_nchw(xn, kh, kw, xn.dtype.type(kh * kw), out)
        ctx.window, ctx.shape = window, (n, h, w, c)
        return torch.from_numpy(out)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        kernels.set_threads()
        kh, kw = ctx.window
        g = g.detach()
        gx = buffers.empty(ctx.shape, torch.empty(0, dtype=g.dtype).numpy().dtype)
        div = gx.dtype.type(kh * kw)
        if g.is_contiguous(memory_format=torch.channels_last):
            avg_pool_backward(g.permute(0, 2, 3, 1).numpy(), kh, kw, div, gx)
        else:
            avg_pool_backward_nchw(g.contiguous().numpy(), kh, kw, div, gx)
        return torch.from_numpy(gx).permute(0, 3, 1, 2), None
