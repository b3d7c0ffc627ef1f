"""``Affine``: ``y = W x + b`` on a flat vector (``nn.Linear``; NIR ``Affine``/``Linear``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spikes.graph.node import LinearNode, as_array


@dataclass(eq=False)
class Affine(LinearNode):
    """``y = W x + b``; ``weight`` (out, in), ``bias`` (out,) or None (then NIR ``Linear``)."""

    weight: np.ndarray
    bias: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.weight = as_array(self.weight, "Affine.weight", ndim=2)
        if self.bias is not None:
            self.bias = as_array(self.bias, "Affine.bias", ndim=1)
            if self.bias.shape[0] != self.weight.shape[0]:
                raise ValueError(f"Affine: bias has {self.bias.shape[0]} entries, weight has {self.weight.shape[0]} rows")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.weight.shape[1],)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.weight.shape[0],)

    def apply(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        w = torch.as_tensor(self.weight, dtype=x.dtype)
        b = torch.as_tensor(self.bias, dtype=x.dtype) if (bias and self.bias is not None) else None
        return torch.nn.functional.linear(x, w, b)
