"""Event-driven 2-D convolution of a spike sequence.

``y[..., :, :, :] = conv2d(x[..., :, :, :], W) + b`` (``nn.Conv2d``'s weights, groups 1, zero padding), over any
leading dimensions (time-first sequences ``(T, B, C, H, W)`` are folded to ``T*B`` images). When the input is
sparse, forward scatters the kernel of each non-zero input and the weight gradient gathers ``dL/dy`` around
the same inputs only (``spikes.kernels.numba_conv``): with density d the cost is ``d * N*Ci*H*W * KH*KW*Co``
instead of ``N*Co*Ho*Wo * Ci*KH*KW``. The input gradient, when the input needs one (a hidden layer's spikes),
is the dense transposed convolution (oneDNN through torch). Above ``max_density`` non-zero inputs the layer
runs ``F.conv2d``.

The event path returns the output in channels-last memory (strides of ``(..., Ho, Wo, Co)``, shape
``(..., Co, Ho, Wo)``): the kernel writes whole channel vectors, the spiking neurons keep the layout
(``spikes.neurons.sequence``), and the next event convolution, pooling and the dense input gradient all run
faster on it (measured in ``benchmarks/bench_training.py``). Call ``.contiguous()`` where NCHW memory is needed.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from spikes import kernels
from spikes.kernels import buffers
from spikes.kernels.numba_conv import conv_forward, conv_weight_grad


class EventConv2d(nn.Conv2d):
    """``nn.Conv2d`` over ``(..., C, H, W)`` that skips zero inputs (groups 1, zero padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 bias: bool = True, max_density: float = 0.15, device=None, dtype=None):
        if isinstance(padding, str):
            raise ValueError(f"EventConv2d padding must be an int or a pair of ints, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         bias=bias, device=device, dtype=dtype)
        if not 0.0 <= max_density <= 1.0:
            raise ValueError(f"EventConv2d max_density must be in [0, 1], got {max_density}")
        self.max_density = max_density

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 4 or x.shape[-3] != self.in_channels:
            raise ValueError(f"EventConv2d({self.in_channels}, {self.out_channels}) got input of shape {tuple(x.shape)}: "
                             f"expected (..., {self.in_channels}, H, W) with at least one leading (batch) dimension")
        lead = x.shape[:-3]
        images = x.reshape(-1, *x.shape[-3:])
        ho, wo = (_out(images.shape[2 + a], self.kernel_size[a], self.stride[a], self.padding[a], self.dilation[a])
                  for a in range(2))
        if ho <= 0 or wo <= 0:
            raise ValueError(f"EventConv2d: input {tuple(images.shape[-2:])} is smaller than the dilated kernel "
                             f"{self.kernel_size} with padding {self.padding}")
        if images.shape[0] == 0 or not _fast(images, self.weight) or _density(images) > self.max_density:
            y = F.conv2d(images, self.weight, self.bias, self.stride, self.padding, self.dilation)
        else:
            y = _EventConv2dFunction.apply(images, self.weight, self.bias, (self.stride, self.padding, self.dilation))
        return y.reshape(*lead, *y.shape[1:])

    def extra_repr(self) -> str:
        return super().extra_repr() + f", max_density={self.max_density}"


def _out(size: int, k: int, stride: int, pad: int, dil: int) -> int:
    """Output length of one spatial axis (``nn.Conv2d``'s formula)."""
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def _fast(images: torch.Tensor, weight: torch.Tensor) -> bool:
    return (kernels.available() and images.device.type == "cpu" and weight.device.type == "cpu"
            and weight.dtype in (torch.float32, torch.float64) and images.dtype == weight.dtype)


DENSITY_SAMPLE = 1 << 20  # inputs larger than this have their density estimated from this many evenly spaced entries


def _density(images: torch.Tensor) -> float:
    """Fraction of non-zero entries (estimated on large inputs: it only chooses the faster path, both are exact)."""
    n = images.numel()
    if n <= DENSITY_SAMPLE:
        return float(torch.count_nonzero(images)) / max(1, n)
    flat = torch.from_numpy(_memory_order(images)[0].reshape(-1))
    sample = flat[:: (n // DENSITY_SAMPLE) | 1]  # odd step: does not keep hitting the same channels
    return float(torch.count_nonzero(sample)) / sample.numel()


def _memory_order(images: torch.Tensor) -> tuple[np.ndarray, bool]:
    """The images as a C-contiguous array in their own memory order: (N, C, H, W) or (N, H, W, C)."""
    x = images.detach()
    if x.is_contiguous():
        return x.numpy(), False
    nhwc = x.permute(0, 2, 3, 1)
    if nhwc.is_contiguous():
        return nhwc.numpy(), True
    return x.contiguous().numpy(), False


def _channels_last(g: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) tensor -> C-contiguous (N, H, W, C) array (no copy when it is already channels-last)."""
    return g.detach().permute(0, 2, 3, 1).contiguous().numpy()


class _EventConv2dFunction(torch.autograd.Function):
    """images (N, Ci, H, W) -> (N, Co, Ho, Wo) channels-last: scatter forward, gather dL/dW, dense dL/dx."""

    @staticmethod
    def forward(ctx, images, weight, bias, geometry):  # type: ignore[override]
        (sh, sw), (ph, pw), (dh, dw) = geometry
        kernels.set_threads()
        xn, channels_last = _memory_order(images)
        co, _, kh, kw = weight.shape
        ho = _out(images.shape[2], kh, sh, ph, dh)
        wo = _out(images.shape[3], kw, sw, pw, dw)
        wt = weight.detach().permute(1, 2, 3, 0).contiguous().numpy()
        b = bias.detach().numpy() if bias is not None else np.zeros(co, wt.dtype)
        out = buffers.empty((images.shape[0], ho, wo, co), wt.dtype)
        conv_forward(xn, channels_last, wt, b, sh, sw, ph, pw, dh, dw, out)
        ctx.save_for_backward(images, weight)
        ctx.geometry = geometry
        ctx.has_bias = bias is not None
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        images, weight = ctx.saved_tensors
        (sh, sw), (ph, pw), (dh, dw) = ctx.geometry
        g_x = g_w = g_b = None
        gn = _channels_last(g)
        need_w, need_b = ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]
        if need_w or need_b:
            n_parts = min(kernels.set_threads(), images.shape[0])
            co, ci, kh, kw = weight.shape
            gw_parts = np.zeros((n_parts, ci, kh, kw, co), np.float64)
            gb_parts = np.zeros((n_parts, co), np.float64)
            xn, channels_last = _memory_order(images)
            conv_weight_grad(xn, channels_last, gn, sh, sw, ph, pw, dh, dw, need_b, gw_parts, gb_parts)
            if need_w:
                g_w = torch.from_numpy(gw_parts.sum(0)).permute(3, 0, 1, 2).to(weight.dtype).contiguous()
            if need_b:
                g_b = torch.from_numpy(gb_parts.sum(0)).to(weight.dtype)
        if ctx.needs_input_grad[0]:
            g_cl = torch.from_numpy(gn).permute(0, 3, 1, 2)
            g_x = torch.ops.aten.convolution_backward(
                g_cl, images.detach(), weight.detach().contiguous(memory_format=torch.channels_last), None,
                [sh, sw], [ph, pw], [dh, dw], False, [0, 0], 1, [True, False, False])[0]
        return g_x, g_w, g_b, None
