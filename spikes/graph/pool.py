"""``SumPool2d`` (NIR ``SumPool2d``) and ``AvgPool2d`` (sum pooling divided by the window area)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikes.graph.conv import _pair
from spikes.graph.node import LinearNode, as_shape


@dataclass(eq=False)
class SumPool2d(LinearNode):
    """``y[c, i, j] = sum of x[c]`` over each ``kernel`` window (zero padding)."""

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        self.in_shape = as_shape(self.in_shape, f"{type(self).__name__}.in_shape")  # type: ignore[assignment]
        if len(self.in_shape) != 3:
            raise ValueError(f"{type(self).__name__}: in_shape must be (C, H, W), got {self.in_shape}")
        self.kernel = _pair(self.kernel, "kernel")
        self.stride = _pair(self.stride if self.stride is not None else self.kernel, "stride")
        self.padding = _pair(self.padding, "padding")
        if min(self.output_shape) <= 0:
            raise ValueError(f"{type(self).__name__}: empty output for input {self.in_shape}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.in_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        c, h, w = self.in_shape
        return (c, (h + 2 * self.padding[0] - self.kernel[0]) // self.stride[0] + 1,
                (w + 2 * self.padding[1] - self.kernel[1]) // self.stride[1] + 1)

    @property
    def scale(self) -> float:
        return 1.0

    def apply(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        y = torch.nn.functional.avg_pool2d(x, self.kernel, self.stride, self.padding, count_include_pad=True)
        return y * (self.kernel[0] * self.kernel[1] * self.scale)


@dataclass(eq=False)
class AvgPool2d(SumPool2d):
    """``nn.AvgPool2d`` (``count_include_pad=True``): sum pooling times ``1 / (kH kW)``."""

    @property
    def scale(self) -> float:
        return 1.0 / (self.kernel[0] * self.kernel[1])
