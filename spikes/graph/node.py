"""Base classes of the graph IR: every node is a small validated dataclass (NIR style).

A node knows its per-sample ``input_shape`` (no time or batch axis) and its ``output_shape``. Linear nodes
(``LinearNode``) also implement ``apply(x, bias=True)`` on a batch ``(N, *input_shape)`` with torch, which
is the float reference and what the lowering probes to build synapse matrices. Population nodes
(``PopulationNode``: spiking neurons, non-spiking integrators, ...) hold state across steps and implement
``step(x, state)``, their float reference with torch's timing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def as_shape(shape, what: str) -> tuple[int, ...]:
    """A validated shape tuple of positive ints."""
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{what}: shape must be a sequence of ints, got {shape!r}") from None
    if not out or any(s <= 0 for s in out):
        raise ValueError(f"{what}: shape must be non-empty with sizes > 0, got {out}")
    return out


def as_steps(value, what: str) -> int:
    """A validated whole number of time steps >= 0 (delays, refractory periods)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or int(value) != value or value < 0:
        raise ValueError(f"{what} must be a whole number of steps >= 0, got {value!r}")
    return int(value)


def as_array(value, what: str, ndim: int | None = None) -> np.ndarray:
    """A float64 copy of ``value`` (tensor or array), checked finite and of ``ndim`` dimensions."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.array(value, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{what}: expected {ndim} dimensions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: contains NaN or inf")
    return arr


@dataclass(eq=False)
class Node:
    """A node of the graph; ``input_shape``/``output_shape`` are per sample."""

    @property
    def input_shape(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def output_shape(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(eq=False)
class LinearNode(Node):
    """A stateless affine map ``y = A x + c`` applied at every step (c = 0 unless the node has a bias)."""

    def apply(self, x: torch.Tensor, bias: bool = True) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(eq=False)
class PopulationNode(Node):
    """A population with state: per step ``(x[t], state[t-1]) -> (out[t], state[t])``, ``x`` the summed input.

    ``graded``: the output is a value (a potential), not a 0/1 spike. ``input_delay``: the summed input
    reaches the population ``input_delay`` steps later. Subclasses are dataclasses with a ``shape`` field.
    """

    graded = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape  # type: ignore[attr-defined]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shape  # type: ignore[attr-defined]

    def step(self, x: torch.Tensor, state):  # pragma: no cover - abstract
        """``(out, state)`` for input ``x`` ``(B, *shape)``; ``state`` None at the first step."""
        raise NotImplementedError
