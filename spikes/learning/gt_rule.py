"""Sparsity-driven local learning for differential growth-transform networks
(Gangopadhyay and Chakrabartty, Front. Neurosci. 15:715451, 2021).

Differential coding: each unit k is a pair of GT neurons (v+_k, v-_k) with inputs ``b = [u; -u]`` and

    Q = [[Q0 + I, -Q0],
         [-Q0, Q0 + I]],        Q0 symmetric, zero diagonal, masked (density ``density``).

With ``d = v+ - v-`` the pair's output, the + neuron spikes when the residual ``r = u - Q0 d`` is positive
and the - neuron when it is negative, so ``s+ - s-`` carries the sign of the residual. At every GT
iteration the rule (local: pre- and post-synaptic quantities only)::

    Q0_ij <- Q0_ij + eta * mask_ij * sum_batch (s+_i - s-_i) (d_j + theta_j)
    Q0    <- (Q0 + Q0^T) / 2                                   (re-symmetrised)

grows the coupling that explains the input, which lowers the residual and hence the spike count: the
network learns to encode its inputs with as few spikes as possible. Implemented from the equations.
"""
from __future__ import annotations

import torch


def random_coupling(n: int, std: float = 0.5, density: float = 0.5, generator: torch.Generator | None = None,
                    dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Q0, mask)``: symmetric ``N(0, std^2)`` couplings on a random symmetric mask of ``density``, zero diagonal."""
    if n < 1:
        raise ValueError(f"random_coupling: n must be >= 1, got {n}")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"random_coupling: density must be in [0, 1], got {density}")
    upper = torch.rand(n, n, generator=generator, dtype=dtype) < density
    upper = torch.triu(upper, diagonal=1)
    mask = (upper | upper.T).to(dtype)
    w = torch.randn(n, n, generator=generator, dtype=dtype) * std
    w = torch.triu(w, diagonal=1)
    return (w + w.T) * mask, mask


def differential_q(q0: torch.Tensor) -> torch.Tensor:
    """The ``(2N, 2N)`` coupling ``[[Q0 + I, -Q0], [-Q0, Q0 + I]]`` of a differential layer."""
    eye = torch.eye(q0.shape[0], dtype=q0.dtype, device=q0.device)
    return torch.cat([torch.cat([q0 + eye, -q0], 1), torch.cat([-q0, q0 + eye], 1)], 0)


def differential_input(u: torch.Tensor) -> torch.Tensor:
    """``b = [u; -u]`` along the last dimension."""
    return torch.cat([u, -u], dim=-1)


def split_pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x+, x-)``: the two halves of a differential population's last dimension."""
    n = x.shape[-1] // 2
    return x[..., :n], x[..., n:]


def gt_rule_delta(s: torch.Tensor, v: torch.Tensor, theta: torch.Tensor | float = 0.0) -> torch.Tensor:
    """``sum_batch (s+_i - s-_i)(d_j + theta_j)`` for spikes ``s`` and potentials ``v`` ``(B, 2N)`` at one iteration."""
    s_p, s_m = split_pair(s)
    v_p, v_m = split_pair(v)
    post = (s_p - s_m).reshape(-1, s_p.shape[-1])
    pre = (v_p - v_m + theta).reshape(-1, v_p.shape[-1])
    return post.T @ pre


def gt_rule_update(q0: torch.Tensor, s: torch.Tensor, v: torch.Tensor, eta: float, mask: torch.Tensor,
                   theta: torch.Tensor | float = 0.0) -> torch.Tensor:
    """One application of the rule (module docstring): returns the new, symmetric ``Q0``."""
    if q0.shape != mask.shape:
        raise ValueError(f"gt_rule_update: mask {tuple(mask.shape)} does not match Q0 {tuple(q0.shape)}")
    if s.shape[-1] != 2 * q0.shape[0] or v.shape != s.shape:
        raise ValueError(f"gt_rule_update: spikes {tuple(s.shape)} and potentials {tuple(v.shape)} must be "
                         f"(B, 2N) with N = {q0.shape[0]}")
    q0 = q0 + eta * mask * gt_rule_delta(s, v, theta).to(q0.dtype)
    return 0.5 * (q0 + q0.T)
