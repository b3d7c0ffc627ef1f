"""``Input`` and ``Output`` nodes: where a sequence ``(T, B, *shape)`` enters and which population's output leaves."""
from __future__ import annotations

from dataclasses import dataclass

from spikes.graph.node import Node, as_shape


@dataclass(eq=False)
class _Boundary(Node):
    """A node at the graph's boundary: per-sample ``shape`` in and out."""

    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        self.shape = as_shape(self.shape, type(self).__name__)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shape


@dataclass(eq=False)
class Input(_Boundary):
    """Graph input of per-sample ``shape`` (graded values allowed: event counts)."""


@dataclass(eq=False)
class Output(_Boundary):
    """Graph output: the output (spikes, or values of a graded population) of the one population feeding it."""
