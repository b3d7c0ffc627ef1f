"""Surrogate gradients for the Heaviside spike function.

Forward, every surrogate is the same step function of the distance to threshold ``x = v - theta``::

    s = H(x) = 1 if x > 0 else 0          (strict, as Lava's ``v > vth``)

Backward, ``ds/dx`` is replaced by a smooth pseudo-derivative with a slope parameter:

=================  ===========================================================  ===========
kind               ds/dx                                                        default
=================  ===========================================================  ===========
``atan``           slope / (2 (1 + (pi/2 * slope * x)^2))                      slope = 2
``fast_sigmoid``   1 / (1 + slope |x|)^2                                       slope = 25
``triangle``       slope / width * max(0, 1 - |x| / width)  (e-prop's psi)      slope = 0.3
``straight_through`` slope (the identity's gradient, scaled)                    slope = 1
=================  ===========================================================  ===========

``atan`` is the one of SpikingJelly and StereoSpike, ``fast_sigmoid`` SuperSpike's (snntorch's default),
``triangle`` the pseudo-derivative of e-prop with ``slope = gamma`` and ``width = v_th``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

KINDS = ("atan", "fast_sigmoid", "triangle", "straight_through")
DEFAULT_SLOPE = {"atan": 2.0, "fast_sigmoid": 25.0, "triangle": 0.3, "straight_through": 1.0}


@dataclass(frozen=True)
class Surrogate:
    """A surrogate gradient: its kind, slope and (triangle only) half-width."""

    kind: str = "atan"
    slope: float | None = None
    width: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"surrogate kind {self.kind!r} is unknown; choose one of {', '.join(KINDS)}")
        if self.slope is None:
            object.__setattr__(self, "slope", DEFAULT_SLOPE[self.kind])
        if not self.slope > 0:
            raise ValueError(f"surrogate slope must be > 0, got {self.slope}")
        if not self.width > 0:
            raise ValueError(f"surrogate width must be > 0, got {self.width}")

    @property
    def code(self) -> int:
        """Index of the kind, as the compiled kernels take it."""
        return KINDS.index(self.kind)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """The pseudo-derivative ds/dx at ``x = v - theta``."""
        return surrogate_derivative(x, self.code, float(self.slope), self.width)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``H(x)`` whose gradient is this surrogate."""
        return SpikeFunction.apply(x, self.code, float(self.slope), self.width)


def surrogate_derivative(x: torch.Tensor, code: int, slope: float, width: float = 1.0) -> torch.Tensor:
    """ds/dx of surrogate ``KINDS[code]``; see the module docstring for the formulas."""
    if code == 0:
        return (slope / 2.0) / (1.0 + (math.pi / 2.0 * slope * x) ** 2)
    if code == 1:
        return 1.0 / (1.0 + slope * x.abs()) ** 2
    if code == 2:
        return (slope / width) * torch.clamp(1.0 - x.abs() / width, min=0.0)
    if code == 3:
        return torch.full_like(x, slope)
    raise ValueError(f"surrogate code {code} is unknown")


class SpikeFunction(torch.autograd.Function):
    """H(x) forward, a surrogate's pseudo-derivative backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, code: int, slope: float, width: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = (code, slope, width)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * surrogate_derivative(x, *ctx.surrogate), None, None, None


def atan(slope: float = 2.0) -> Surrogate:
    return Surrogate("atan", slope)


def fast_sigmoid(slope: float = 25.0) -> Surrogate:
    return Surrogate("fast_sigmoid", slope)


def triangle(slope: float = 0.3, width: float = 1.0) -> Surrogate:
    return Surrogate("triangle", slope, width)


def straight_through(slope: float = 1.0) -> Surrogate:
    return Surrogate("straight_through", slope)
