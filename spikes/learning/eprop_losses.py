"""Sequence losses that give their gradient ``dE/dy[t]`` online, step by step (e-prop needs it forward in time).

Both losses are sums over time of per-step terms, so ``sum_t loss.step(t, y[t])[0] == loss.total(y)`` and
``loss.step(t, y[t])[1] == dE/dy[t]`` (the partial derivative of the total w.r.t. the readout at step t)::

    SequenceMSE:           E = 1/(2 B n_T) sum_{t, b, k} m[t] (y_bk[t] - y*_bk[t])^2,  dE/dy[t] = m[t] (y[t] - y*[t]) / (B n_T)
    SequenceCrossEntropy:  E = 1/(B n_T) sum_{t, b} m[t] CE(softmax(y_b[t]), label_b),  dE/dy[t] = m[t] (pi[t] - onehot) / (B n_T)

with ``m[t]`` the 0/1 mask of the steps that count and ``n_T = sum_t m[t]``.
"""
from __future__ import annotations

import torch


def _mask(mask: torch.Tensor | None, T: int, dtype) -> torch.Tensor:
    if mask is None:
        return torch.ones(T, dtype=dtype)
    mask = torch.as_tensor(mask).to(dtype)
    if mask.shape != (T,):
        raise ValueError(f"loss mask must have shape (T,) = ({T},), got {tuple(mask.shape)}")
    if not mask.sum() > 0:
        raise ValueError("loss mask selects no time step")
    return mask


class SequenceMSE:
    """Mean squared error to a target sequence ``target (T, B, K)``, over the steps of ``mask (T,)``."""

    def __init__(self, target: torch.Tensor, mask: torch.Tensor | None = None):
        if target.dim() != 3:
            raise ValueError(f"SequenceMSE target must be (T, B, K), got {tuple(target.shape)}")
        self.target = target
        self.mask = _mask(mask, target.shape[0], target.dtype)
        self.norm = float(target.shape[1] * self.mask.sum())

    def step(self, t: int, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(E_t, dE/dy[t])`` for the readout ``y (B, K)`` at step t."""
        err = (y - self.target[t]) * (self.mask[t] / self.norm)
        return 0.5 * (err * (y - self.target[t])).sum(), err

    def total(self, y: torch.Tensor) -> torch.Tensor:
        """E for the whole readout ``y (T, B, K)`` (differentiable)."""
        sq = ((y - self.target) ** 2).sum(dim=(1, 2))
        return 0.5 * (sq * self.mask).sum() / self.norm


class SequenceCrossEntropy:
    """Softmax cross-entropy to per-sequence labels ``labels (B,)``, averaged over the steps of ``mask (T,)``."""

    def __init__(self, labels: torch.Tensor, n_classes: int, T: int, mask: torch.Tensor | None = None,
                 dtype=torch.float32):
        labels = torch.as_tensor(labels).long()
        if labels.dim() != 1:
            raise ValueError(f"SequenceCrossEntropy labels must be (B,), got {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"labels must be in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
        self.labels = labels
        self.onehot = torch.nn.functional.one_hot(labels, n_classes).to(dtype)
        self.mask = _mask(mask, T, dtype)
        self.norm = float(labels.numel() * self.mask.sum())

    def step(self, t: int, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mask[t] == 0:
            return y.new_zeros(()), torch.zeros_like(y)
        logp = torch.log_softmax(y, dim=-1)
        w = self.mask[t] / self.norm
        return -(logp * self.onehot.to(y.dtype)).sum() * w, (logp.exp() - self.onehot.to(y.dtype)) * w

    def total(self, y: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(y, dim=-1)
        per_t = -(logp * self.onehot.to(y.dtype)).sum(dim=(1, 2))
        return (per_t * self.mask.to(y.dtype)).sum() / self.norm

    def errors(self, y: torch.Tensor) -> torch.Tensor:
        """Per-sequence 0/1 error of the class with the largest mean softmax over the masked steps."""
        pi = torch.softmax(y.detach(), dim=-1) * self.mask.to(y.dtype)[:, None, None]
        return (pi.sum(0).argmax(-1) != self.labels).float()
