"""``Input`` and ``Output`` nodes: where a sequence ``(T, B, *shape)`` enters and which spikes leave."""
from __future__ import annotations

from dataclasses import dataclass

from spikes.deploy.graph.node import Node, as_shape


@dataclass(eq=False)
class Input(Node):
    """Graph input of per-sample ``shape`` (graded values allowed: event counts)."""

    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        self.shape = as_shape(self.shape, "Input")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shape


@dataclass(eq=False)
class Output(Node):
    """Graph output: the spikes of the one ``Neurons`` node that feeds it."""

    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        self.shape = as_shape(self.shape, "Output")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shape
