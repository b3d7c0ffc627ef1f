"""Measures of interference between tasks learned in sequence, for any recurrent model with ``w_in``, a recurrent
weight (``recurrent_weight()`` or ``w_rec``) and ``w_out``: the update cosines per block, input-driven vs
recurrent drive, principal angles between activity subspaces, and (rate networks) fixed points.

- Update cosines: with ``W0`` the weights before task A, ``WA`` after A and ``WB`` after B,
  ``dA = WA - W0``, ``dB = WB - WA``, and per block ``cos = <dA, dB> / (|dA| |dB|)`` (Frobenius).
- Drive: ``|W_in x_t|`` and ``|W_rec h_{t-1}|`` (Euclidean, per trial and step; ``h`` the rates or spikes the
  recurrent weight multiplies), averaged over the trials and the mask's steps; the input-drive fraction is
  ``mean |W_in x| / (mean |W_in x| + mean |W_rec h|)``.
- Activity subspace: the leading principal components of the states ``h`` (pooled over trials and steps, centred)
  that explain a fraction ``variance`` of their variance; principal angles between two subspaces are
  ``scipy.linalg.subspace_angles``.
- Fixed points (Sussillo & Barak 2013): minimise ``q(h) = |F(h) - h|^2 / 2`` over ``h`` from many starting states
  (Adam, then L-BFGS), keep the minima with ``q < tol``, merge those closer than ``merge``; each point's stability
  from the eigenvalues of the Jacobian ``dF/dh`` (stable: spectral radius < 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import scipy.linalg
import torch

BLOCKS = {"input": "w_in", "recurrent": "w_rec", "readout": "w_out"}


def update_cosines(w0: Mapping[str, torch.Tensor], wa: Mapping[str, torch.Tensor], wb: Mapping[str, torch.Tensor],
                   blocks: Mapping[str, str] = BLOCKS) -> dict[str, float]:
    """``{block: cos(dA, dB)}`` (module docstring) for the state-dict entries named by ``blocks``; ``nan`` where an
    update is zero (a block that did not learn in one of the tasks)."""
    out = {}
    for block, name in blocks.items():
        for d, what in ((w0, "before A"), (wa, "after A"), (wb, "after B")):
            if name not in d:
                raise KeyError(f"update_cosines: no weight {name!r} ({block} block) in the weights {what}")
        da = (wa[name].double() - w0[name].double()).flatten()
        db = (wb[name].double() - wa[name].double()).flatten()
        norm = float(da.norm() * db.norm())
        out[block] = float(da @ db) / norm if norm > 0 else math.nan
    return out


def update_norms(w0, wa, wb, blocks: Mapping[str, str] = BLOCKS) -> dict[str, dict[str, float]]:
    """``{block: {"A": |dA|, "B": |dB|}}`` (Frobenius norms of the updates)."""
    return {block: {"A": float((wa[n].double() - w0[n].double()).norm()),
                    "B": float((wb[n].double() - wa[n].double()).norm())} for block, n in blocks.items()}


def drive_norms(w_in: torch.Tensor, w_rec: torch.Tensor, x: torch.Tensor, h: torch.Tensor,
                mask: torch.Tensor | None = None) -> dict[str, float]:
    """Input and recurrent drive of a run: ``x (T, B, n_in)`` its inputs, ``h (T, B, N)`` its states (``h[-1] = 0``);
    ``{"input": mean |W_in x_t|, "recurrent": mean |W_rec h_{t-1}|, "input_fraction": ...}`` over the trials and
    the steps of ``mask (T,)`` (all steps if None)."""
    x, h = x.double(), h.double()
    prev = torch.cat([torch.zeros_like(h[:1]), h[:-1]])
    inp = (x @ w_in.double().T).norm(dim=-1)                      # (T, B)
    rec = (prev @ w_rec.double().T).norm(dim=-1)
    m = torch.ones(x.shape[0], dtype=torch.bool) if mask is None else torch.as_tensor(mask).bool()
    i, r = float(inp[m].mean()), float(rec[m].mean())
    return {"input": i, "recurrent": r, "input_fraction": i / (i + r) if i + r > 0 else math.nan}


def activity_subspace(h: np.ndarray | torch.Tensor, variance: float = 0.9, max_dim: int = 10) -> np.ndarray:
    """Orthonormal basis ``(N, k)`` of the leading principal components of the states ``h (..., N)`` (pooled over
    the leading axes, centred) that explain at least ``variance`` of their variance (at most ``max_dim``)."""
    a = np.asarray(h, dtype=np.float64).reshape(-1, np.shape(h)[-1])
    a = a - a.mean(0)
    _, s, vt = np.linalg.svd(a, full_matrices=False)
    power = s ** 2
    if power.sum() == 0:
        raise ValueError("activity_subspace: the states do not vary (all equal)")
    k = int(np.searchsorted(np.cumsum(power) / power.sum(), variance - 1e-12) + 1)
    return vt[:min(k, max_dim, len(s))].T


def principal_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Principal angles in degrees between the column spaces of ``a (N, p)`` and ``b (N, q)``, smallest first."""
    return np.sort(np.degrees(scipy.linalg.subspace_angles(a, b)))


@dataclass
class FixedPoints:
    """Fixed points of a map ``F``: ``points (M, N)``, their ``q`` values, Jacobian eigenvalues ``eigenvalues (M, N)``
    (complex) and ``stable (M,)`` (spectral radius < 1); ``slowest`` the lowest-``q`` minimum found whether or not
    it passed ``tol``."""

    points: np.ndarray
    q: np.ndarray
    eigenvalues: np.ndarray
    stable: np.ndarray
    slowest: np.ndarray
    slowest_q: float

    def __len__(self) -> int:
        return len(self.points)

    def nearest(self, h: np.ndarray) -> tuple[np.ndarray, float]:
        """The fixed point nearest ``h`` and its ``q`` (the slowest point when none was found)."""
        if not len(self):
            return self.slowest, self.slowest_q
        j = int(np.argmin(np.linalg.norm(self.points - np.asarray(h)[None], axis=1)))
        return self.points[j], float(self.q[j])


def find_fixed_points(step: Callable[[torch.Tensor], torch.Tensor], starts: torch.Tensor, tol: float = 1e-8,
                      merge: float = 1e-3, adam_steps: int = 500, lr: float = 1e-2,
                      lbfgs_steps: int = 100) -> FixedPoints:
    """Fixed points ``h* = F(h*)`` of ``step`` (``F``, batched over rows: ``(M, N) -> (M, N)``) from the rows of
    ``starts`` (module docstring). ``q`` is separable across rows, so the rows are minimised together."""
    h = starts.detach().double().clone().requires_grad_(True)

    def q_of(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((step(v) - v) ** 2).sum(-1)

    opt = torch.optim.Adam([h], lr=lr)
    for k in range(adam_steps):
        opt.zero_grad()
        q_of(h).sum().backward()
        opt.step()
    if lbfgs_steps:
        opt2 = torch.optim.LBFGS([h], lr=1.0, max_iter=lbfgs_steps, tolerance_grad=1e-14, tolerance_change=1e-18,
                                 line_search_fn="strong_wolfe")

        def closure():
            opt2.zero_grad()
            loss = q_of(h).sum()
            loss.backward()
            return loss
        opt2.step(closure)
    with torch.no_grad():
        q = q_of(h).numpy()
        pts = h.detach().numpy()
    best = int(np.argmin(q))
    kept: list[int] = []
    for i in np.argsort(q):
        if q[i] >= tol:
            break
        if all(np.linalg.norm(pts[i] - pts[j]) > merge for j in kept):
            kept.append(int(i))
    points = pts[kept]
    eig = np.zeros((len(kept), pts.shape[1]), complex)
    for r, p in enumerate(points):
        jac = torch.autograd.functional.jacobian(lambda v: step(v[None])[0], torch.from_numpy(p))
        eig[r] = np.linalg.eigvals(jac.numpy())
    stable = np.abs(eig).max(1) < 1 if len(kept) else np.zeros(0, bool)
    return FixedPoints(points, q[kept], eig, stable, pts[best], float(q[best]))


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors in degrees (90 when either is zero)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return 90.0
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))))
