"""``Flatten`` (``nn.Flatten`` of a per-sample tensor; NIR ``Flatten``) and ``Scale`` (element-wise gain)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from spikes.graph.node import LinearNode, as_shape


@dataclass(eq=False)
class Flatten(LinearNode):
    """``(C, H, W) -> (C*H*W,)`` in C order."""

    in_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        self.in_shape = as_shape(self.in_shape, "Flatten.in_shape")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.in_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (math.prod(self.in_shape),)

    def apply(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


@dataclass(eq=False)
class Scale(LinearNode):
    """``y = gain * x`` (e.g. PLIF's input gain ``1 - alpha``; folded into the synapses when lowered)."""

    shape: tuple[int, ...]
    gain: float

    def __post_init__(self) -> None:
        self.shape = as_shape(self.shape, "Scale.shape")
        self.gain = float(self.gain)
        if not math.isfinite(self.gain):
            raise ValueError(f"Scale: gain must be finite, got {self.gain}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shape

    def apply(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        return x * self.gain
