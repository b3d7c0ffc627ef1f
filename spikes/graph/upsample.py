"""``Upsample``: nearest-neighbour resize of (C, H, W) to (C, *size), as ``nn.Upsample(mode="nearest")``."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from spikes.graph.conv import _pair
from spikes.graph.node import LinearNode, as_shape


@dataclass(eq=False)
class Upsample(LinearNode):
    """``y[c, i, j] = x[c, floor(i H / H'), floor(j W / W')]`` (torch's nearest)."""

    in_shape: tuple[int, int, int]
    size: tuple[int, int]

    def __post_init__(self) -> None:
        self.in_shape = as_shape(self.in_shape, "Upsample.in_shape")  # type: ignore[assignment]
        if len(self.in_shape) != 3:
            raise ValueError(f"Upsample: in_shape must be (C, H, W), got {self.in_shape}")
        self.size = _pair(self.size, "Upsample.size")
        if min(self.size) <= 0:
            raise ValueError(f"Upsample: size must be > 0, got {self.size}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.in_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.in_shape[0], *self.size)

    def apply(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, size=self.size, mode="nearest")
