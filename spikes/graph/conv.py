"""``Conv2d``: 2-D cross-correlation as in ``nn.Conv2d`` (NIR ``Conv2d``), per-sample layout (C, H, W)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spikes.graph.node import LinearNode, as_array, as_shape


def _pair(v, what: str) -> tuple[int, int]:
    out = (int(v), int(v)) if np.isscalar(v) else tuple(int(x) for x in v)
    if len(out) != 2:
        raise ValueError(f"{what}: expected an int or a pair, got {v!r}")
    return out  # type: ignore[return-value]


@dataclass(eq=False)
class Conv2d(LinearNode):
    """``y = conv2d(x, weight, bias, stride, padding, dilation, groups)``; ``weight`` (Cout, Cin/groups, kH, kW)."""

    weight: np.ndarray
    in_shape: tuple[int, int, int]
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        self.weight = as_array(self.weight, "Conv2d.weight", ndim=4)
        self.in_shape = as_shape(self.in_shape, "Conv2d.in_shape")  # type: ignore[assignment]
        if len(self.in_shape) != 3:
            raise ValueError(f"Conv2d: in_shape must be (C, H, W), got {self.in_shape}")
        self.stride, self.padding = _pair(self.stride, "Conv2d.stride"), _pair(self.padding, "Conv2d.padding")
        self.dilation = _pair(self.dilation, "Conv2d.dilation")
        if self.in_shape[0] != self.weight.shape[1] * self.groups or self.weight.shape[0] % self.groups:
            raise ValueError(f"Conv2d: weight {self.weight.shape} with groups={self.groups} does not fit input "
                             f"channels {self.in_shape[0]}")
        if self.bias is not None:
            self.bias = as_array(self.bias, "Conv2d.bias", ndim=1)
            if self.bias.shape[0] != self.weight.shape[0]:
                raise ValueError(f"Conv2d: bias has {self.bias.shape[0]} entries for {self.weight.shape[0]} channels")
        if min(self.output_shape) <= 0:
            raise ValueError(f"Conv2d: empty output for input {self.in_shape}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.in_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        _, h, w = self.in_shape
        kh, kw = self.weight.shape[2:]
        size = lambda n, k, i: (n + 2 * self.padding[i] - self.dilation[i] * (k - 1) - 1) // self.stride[i] + 1  # noqa: E731
        return (self.weight.shape[0], size(h, kh, 0), size(w, kw, 1))

    def apply(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        w = torch.as_tensor(self.weight, dtype=x.dtype)
        b = torch.as_tensor(self.bias, dtype=x.dtype) if (bias and self.bias is not None) else None
        return torch.nn.functional.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)
