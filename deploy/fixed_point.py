"""Loihi 2's fixed-point number formats, shared by the quantisation of projections (``spikes.deploy.quantize``),
every population kind (``spikes.deploy.populations``) and ``sim``'s LIF steps (``spikes.deploy.kernels``).

Registers (the formats of Lava's LIF, Dense and Sparse)::

    threshold   vth                 17 bit unsigned, vth <= VTH_MAX = 2**17 - 1 (the state compares to vth << 6)
    state       u, v, traces        24 bit signed, saturating at +-V_LIMIT = +-(2**23 - 1)  (STATE_MAX = 2**23)
    bias        bias_mant << e      13-bit signed mantissa, -BIAS_MANT_MAX - 1 <= bias_mant <= BIAS_MANT_MAX
                                    = 2**12 - 1, one exponent e in 0..7 per population
    weights     w << e              Dense/Sparse: 8-bit mantissa |w| <= WEIGHT_MAX = 254, even for mixed signs
                                    (Lava floors odd values), one exponent e in WEIGHT_EXP_RANGE per projection
    decays      d in 0..4096        x' = sign(x (4096 - d)) (|x (4096 - d)| >> 12): rounds toward zero

Weights: ``w = round_even(W S / 2**e)``, ``e`` the smallest exponent at which the largest ``|W S| / 2**e`` fits
``WEIGHT_MAX`` (:func:`weight_exponent`); biases: ``bias_mant << bias_exp = round(total)`` with the smallest
exponent that fits the mantissa (:func:`bias_mantissa`).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

VTH_MAX = 2**17 - 1
BIAS_MANT_MAX = 2**12 - 1
STATE_MAX = 2**23
V_LIMIT = STATE_MAX - 1
WEIGHT_MAX = 254
WEIGHT_EXP_RANGE = (-8, 7)


def round_even(x: np.ndarray) -> np.ndarray:
    """Nearest even integer (ties to a multiple of 4, numpy's round-half-even on x/2)."""
    return 2.0 * np.round(np.asarray(x, dtype=np.float64) / 2.0)


def weight_exponent(w_max: float) -> int:
    """The weight exponent ``e`` that brings the largest scaled weight ``w_max`` within the 8-bit mantissa
    (``|w| / 2**e <= WEIGHT_MAX``), clipped to ``WEIGHT_EXP_RANGE``."""
    exp = math.ceil(math.log2(w_max / WEIGHT_MAX)) if w_max > 0 else 0
    return min(max(exp, WEIGHT_EXP_RANGE[0]), WEIGHT_EXP_RANGE[1])


def quantize_weights(w, s: float, exp: int):
    """``(integer weights, error, reference)`` of ``w`` (dense array or sparse matrix) scaled by ``s`` with weight
    exponent ``exp``: even-rounded mantissas within +-WEIGHT_MAX; error and reference in scaled float units,
    flat over the stored entries, for the relative RMS error."""
    sparse = sp.issparse(w)
    scaled = (w.multiply(s / 2.0**exp).tocsr() if sparse else w * (s / 2.0**exp))
    if sparse:
        q = scaled.copy()
        q.data = np.clip(round_even(q.data), -WEIGHT_MAX, WEIGHT_MAX)
        err = scaled.data * 2.0**exp - q.data * 2.0**exp
        q.data = q.data.astype(np.int64)
        q.eliminate_zeros()
        return q, err, np.abs(scaled.data * 2.0**exp)
    q = np.clip(round_even(scaled), -WEIGHT_MAX, WEIGHT_MAX)
    return q.astype(np.int64), (scaled - q) * 2.0**exp, np.abs(scaled * 2.0**exp)


def bias_mantissa(total: np.ndarray) -> tuple[np.ndarray, int]:
    """``(mant, exp)`` with ``mant << exp ~ total``, 13-bit mantissa, exponent in 0..7."""
    exp = 0
    while exp < 7 and np.abs(np.round(total / 2**exp)).max(initial=0) > BIAS_MANT_MAX:
        exp += 1
    return np.clip(np.round(total / 2**exp), -BIAS_MANT_MAX - 1, BIAS_MANT_MAX).astype(np.int64), exp


def decay_fixed(x: np.ndarray, d: int) -> np.ndarray:
    """``sign(x (4096 - d)) (|x (4096 - d)| >> 12)`` in int64: a 12-bit decay, rounding toward zero (Lava's LIF)."""
    p = x.astype(np.int64) * (4096 - int(d))
    return np.sign(p) * (np.abs(p) >> 12)


def wrap24(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to 24 bits: ``((x + 2**23) mod 2**24) - 2**23``."""
    return ((x + 2**23) % 2**24) - 2**23
