"""``PopulationKind``: how one kind of population is lowered, quantised, simulated (``sim``) and built in Lava.

Every graph population node type (``spikes.graph.PopulationNode`` subclass) has one kind. The
deploy stages stay generic and ask the kind for what differs:

- lowering: ``fold_bias(node, const)``, the per-neuron bias once the constant input current ``const`` (layer
  biases) is folded in;
- ``check_lava(pop)``: raise ``ValueError`` naming the layer for what the kind cannot express;
- ``quantize(pop, i_max, conv_max, options) -> (QPop, report)``: the fixed-point population; its ``scale``
  S maps the float units of the input current to integers (incoming weights are ``W S / 2**e``);
- ``sim``: ``init_state(pop, m, fixed)``, ``step(pop, a, state, t, fixed) -> out`` for the input ``a`` (M,)
  of step t (int64 in fixed point: the projections' sum as Lava delivers it), ``run(pop, acc, state,
  fixed)`` over a whole sequence ``(T, M)`` (default: ``step`` per step), ``final_states(state)``;
- Lava: ``lava_process(pop, fixed, shape, layout)`` (a process with an ``a_in`` InPort; ``layout`` puts a flat
  per-neuron array in Lava's order), ``lava_output(proc)``
  (the OutPort that carries spikes or, for graded kinds, values), ``lava_states(proc)`` (final state Vars).

``native``: Lava ships the process (it maps onto Loihi 2 as is); custom kinds run in Lava's CPU simulation
and would need microcode on a chip. ``graded``: the output is a value (int64 in fixed point, float64 in floating point), returned by the
backends under ``"values"``; spiking kinds return ``"spikes"`` (uint8).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

TRACES = ("spikes", "values")   # per-step outputs (T, B, *shape): spikes, or the values of graded kinds


class FixedPointPopulation:
    """What every kind's fixed-point population dataclass shares: ``shape``, ``bias_mant``, ``bias_exp`` fields."""

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # type: ignore[attr-defined]

    @property
    def bias(self) -> np.ndarray:
        """The per-neuron bias ``bias_mant << bias_exp`` (int64)."""
        return self.bias_mant.astype(np.int64) << self.bias_exp  # type: ignore[attr-defined]


class PopulationKind:
    name: str = ""
    node_type: type = type(None)
    qtype: type = type(None)             # its fixed-point population (a dataclass)
    graded: bool = False
    native: bool = False       # a process Lava ships (runs on Loihi 2 as is); False: a custom process

    def fold_bias(self, node, const: np.ndarray) -> np.ndarray:
        return const

    def check_lava(self, pop) -> None:
        return None

    def quantize(self, pop, i_max: float, conv_max: float, options: dict):  # pragma: no cover - abstract
        raise NotImplementedError

    def init_state(self, pop, m: int, fixed: bool) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, pop, a: np.ndarray, state: dict, t: int, fixed: bool) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def run(self, pop, acc: np.ndarray, state: dict, fixed: bool) -> np.ndarray:
        """Outputs ``(T, M)`` for inputs ``acc`` ``(T, M)``; ``state`` updated in place."""
        out = np.zeros(acc.shape, dtype=self.output_dtype(fixed))
        for t in range(acc.shape[0]):
            out[t] = self.step(pop, acc[t], state, t, fixed)
        return out

    def output_dtype(self, fixed: bool):
        if not self.graded:
            return np.uint8
        return np.int64 if fixed else np.float64

    def final_states(self, state: dict) -> dict[str, np.ndarray]:
        return dict(state)

    def overflow(self, state: dict) -> tuple[int, int]:
        """(wraps, saturations) counted in fixed point."""
        c = state.get("counts")
        return (int(c[:, 0].sum()), int(c[:, 1].sum())) if c is not None else (0, 0)

    # -- packing (``spikes.deploy.pack``) ----------------------------------------------------------------
    def pack(self, pop, copies: int, shape: tuple[int, ...] | None = None):
        """``copies`` independent copies of ``pop`` side by side: ``copies * N`` neurons, neuron i of copy b at flat
        index ``b N + i``, in ``shape`` (default flat ``(copies N,)``; ``(copies C, H, W)`` stacks the copies along
        the channels, the same flat order). Default (element-wise kinds): every per-neuron field (a 1-D array of N
        entries) tiled, ``p_packed[b N + i] = p[i]``; a lowered population's graph node likewise
        (:meth:`pack_node`). Scalars (decays, thresholds, exponents, latencies) stay."""
        n = pop.size
        shape = _packed_shape(shape, n, copies)
        changes = {"shape": shape, **_tiled(pop, n, copies)}
        node = getattr(pop, "node", None)
        if node is not None:
            changes["node"] = self.pack_node(node, copies, shape)
        return dataclasses.replace(pop, **changes)

    def pack_node(self, node, copies: int, shape: tuple[int, ...] | None = None, **changes):
        """The graph node of ``copies`` copies of ``node`` (``shape`` as in :meth:`pack`, per-neuron arrays tiled;
        ``changes``: further fields a kind packs itself, set in the same step as the shape)."""
        n = math.prod(node.shape)
        fields = {**_tiled(node, n, copies), **changes}
        return dataclasses.replace(node, shape=_packed_shape(shape, n, copies), **fields)

    def coupling_entries(self, pop, copies: int = 1) -> int:
        """Entries that ``copies`` packed copies of ``pop`` store for their own coupling, for sizing a packed graph
        (0 for element-wise kinds; GT: its dense block-diagonal ``q``, ``(copies N)**2``)."""
        return 0

    def lava_process(self, pop, fixed: bool, shape: tuple[int, ...], layout):  # pragma: no cover
        raise NotImplementedError

    def lava_output(self, proc):  # pragma: no cover - abstract
        raise NotImplementedError

    def lava_states(self, proc) -> dict[str, np.ndarray]:
        return {}


def _packed_shape(shape: tuple[int, ...] | None, n: int, copies: int) -> tuple[int, ...]:
    if shape is None:
        return (copies * n,)
    if math.prod(shape) != copies * n:
        raise ValueError(f"pack: shape {tuple(shape)} does not hold {copies} copies of {n} neurons")
    return tuple(shape)


def _tiled(obj, n: int, copies: int) -> dict[str, np.ndarray]:
    """The dataclass fields of ``obj`` that hold one value per neuron (1-D arrays of ``n``), tiled ``copies`` times."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.size == n:
            out[f.name] = np.tile(v, copies)
    return out
