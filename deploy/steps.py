"""The per-step arithmetic of the ``integrator`` and ``eprop`` kinds (numpy, no Lava): ``sim`` (the kinds'
``step``) and the Lava ProcessModels (``spikes.deploy.processes.integrator``, ``.eprop_neuron``) call the same
functions, so ``sim`` is bit-exact with ``lava-fixed`` by construction. The equations are in the kinds' modules
(``spikes.deploy.populations.integrator``, ``.eprop``); GT's arithmetic, compiled, is ``spikes.deploy.gt_kernels``,
LIF's ``spikes.deploy.kernels``.
"""
from __future__ import annotations

import numpy as np

from spikes.deploy.fixed_point import V_LIMIT, decay_fixed, wrap24


def integrator_fixed_step(v: np.ndarray, a: np.ndarray, dv: int, bias: np.ndarray, t: int, onset: int,
                          counts: np.ndarray | None = None) -> np.ndarray:
    """One fixed-point step of the integrator, ``v = clip(decay_fixed(v, dv) + (a << 6) + [t >= onset] bias)`` to
    +-V_LIMIT (int64; ``v`` updated in place and returned); ``counts[:, 1]`` += saturations."""
    y = decay_fixed(v, dv) + (a.astype(np.int64) << 6)
    if t >= onset:
        y = y + bias
    if counts is not None:
        counts[:, 1] += np.abs(y) > V_LIMIT
    v[:] = np.clip(y, -V_LIMIT, V_LIMIT)
    return v


def eprop_fixed_step(a_in: np.ndarray, v: np.ndarray, a: np.ndarray, z: np.ndarray, r: np.ndarray, dv: int, da: int,
                     vth: int, beta_mant: np.ndarray, beta_shift: int, a_frac: int, n_ref: int, bias: np.ndarray,
                     t: int, onset: int, counts: np.ndarray | None = None) -> np.ndarray:
    """One fixed-point e-prop step (equations: ``spikes.deploy.populations.eprop``); ``v, a, z, r`` int64 (M,)
    updated in place; returns the spikes (uint8). ``counts[:, 0]`` += input wraps, ``counts[:, 1]`` += membrane
    and trace saturations."""
    i = a_in.astype(np.int64) << 6
    iw = wrap24(i)
    zp = z.astype(np.int64)
    x = decay_fixed(v, dv) + iw - zp * (int(vth) << 6)
    if t >= onset:
        x = x + bias
    y = decay_fixed(a, da) + (zp << int(a_frac))
    if counts is not None:
        counts[:, 0] += iw != i
        counts[:, 1] += (np.abs(x) > V_LIMIT).astype(np.int64) + (y > V_LIMIT)
    v[:] = np.clip(x, -V_LIMIT, V_LIMIT)
    a[:] = np.minimum(y, V_LIMIT)
    theta = (int(vth) << 6) + ((beta_mant.astype(np.int64) * a) >> int(beta_shift))
    s = (v > theta) & (r <= 0)
    r[:] = np.where(s, int(n_ref), np.maximum(r - 1, 0))
    z[:] = s
    return s.astype(np.uint8)


def eprop_float_step(a_in: np.ndarray, v: np.ndarray, a: np.ndarray, z: np.ndarray, r: np.ndarray, dv: float,
                     da: float, vth: float, beta: np.ndarray, n_ref: int, bias: np.ndarray, t: int,
                     onset: int) -> np.ndarray:
    """One floating-point e-prop step, ``v = v (1 - dv) + a_in - vth z + [t >= onset] bias``, ``a = a (1 - da) + z``,
    ``z = v > vth + beta a and r == 0`` (float64 ``v, a, z``, int ``r`` updated in place); returns the spikes
    (uint8)."""
    x = v * (1.0 - dv) + a_in - vth * z
    if t >= onset:
        x = x + bias
    v[:] = x
    a[:] = a * (1.0 - da) + z
    s = (v > vth + beta * a) & (r <= 0)
    r[:] = np.where(s, int(n_ref), np.maximum(r - 1, 0))
    z[:] = s
    return s.astype(np.uint8)
