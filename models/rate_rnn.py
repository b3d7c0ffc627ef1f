"""A plain rate (ANN) recurrent network: the leaky tanh RNN of neuroscience task studies, with a linear readout.

Per step (:func:`spikes.neurons.rate.tanh_rnn_step`)::

    h[t] = (1 - alpha) h[t-1] + alpha tanh(W_rec h[t-1] + W_in x[t] + b),      y[t] = W_out h[t] + b_out

from ``h[-1] = 0``. Weights ``W_in ~ N(0, 1/n_in)``, ``W_rec ~ N(0, g^2/N)``, ``W_out ~ N(0, 1/N)``, biases 0, drawn
from ``seed``. ``learn = "recurrent"`` trains only ``W_rec`` and ``b``: the input and readout vectors stay the
random ones they were drawn as (``requires_grad = False``), as in the low-rank RNN studies of learning (Schuessler,
Mastrogiuseppe, Dubreuil, Ostojic & Barak, NeurIPS 2020), so whatever a task needs the recurrent dynamics do.
``readout = "input"`` (needs ``n_out = n_in``) reads output ``k`` along input ``k``'s vector instead,
``W_out[k] = W_in[:, k]^T / |W_in[:, k]|^2``: an input held on drives its own output (``W_out[k] tanh(W_in[:, k] s)
~ 0.7 s``), so a task whose input stays on is solved by the input itself, and one whose input is gone must hold a
fixed point along that vector (the minimal model of input-driven vs recurrent tasks in the sequential-learning
studies). The parameter names (``w_in``, ``w_rec``, ``w_out``) are those of the e-prop RSNN, so analyses of
recurrent models read either the same way.

Objectives (``[model] loss``):

- ``ce``: sequence classification by the readout, as the RSNN (:class:`spikes.models.registry.SequenceObjective`:
  softmax cross-entropy on the loss mask's steps);
- ``mse``: signed targets (:class:`SignedTargetObjective`), the tasks of :mod:`spikes.datasets.tasks.memory`:
  label ``y`` asks output ``y // 2`` for ``+1`` (``y`` odd) or ``-1`` on every masked step; the other outputs are
  free;
- ``mse_silent``: the same, and the other outputs are asked for ``0`` (a task's output stays silent on the other
  tasks' trials, the multitask convention; a network cannot answer B with A's memory).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from spikes.learning.rule import Batch, Objective
from spikes.neurons.rate import TanhRNNParameters, tanh_rnn_step


LEARN = ("all", "recurrent")       # which weights learn: all of them, or W_rec and b only
READOUTS = ("random", "input")     # W_out drawn at random, or along the input vectors


class RateRNN(nn.Module):
    """Leaky tanh RNN (module docstring); ``forward(x (T, B, n_in)) -> (y (T, B, n_out), h (T, B, N))``."""

    def __init__(self, n_in: int, n_rec: int, n_out: int, alpha: float = 0.2, g: float = 0.9, seed: int = 0,
                 learn: str = "all", readout: str = "random"):
        super().__init__()
        if min(n_in, n_rec, n_out) < 1 or not 0 < alpha <= 1 or g < 0:
            raise ValueError(f"RateRNN: need n_in, n_rec, n_out >= 1, 0 < alpha <= 1, g >= 0; got n_in={n_in}, "
                             f"n_rec={n_rec}, n_out={n_out}, alpha={alpha}, g={g}")
        if learn not in LEARN:
            raise ValueError(f"RateRNN: learn must be one of {LEARN}, got {learn!r}")
        if readout not in READOUTS or (readout == "input" and n_out != n_in):
            raise ValueError(f"RateRNN: readout must be one of {READOUTS} ('input' needs n_out = n_in), got "
                             f"{readout!r} with n_in={n_in}, n_out={n_out}")
        gen = torch.Generator().manual_seed(int(seed))
        self.n_in, self.n_rec, self.n_out, self.alpha = n_in, n_rec, n_out, float(alpha)
        self.w_in = nn.Parameter(torch.randn(n_rec, n_in, generator=gen) / n_in ** 0.5)
        self.w_rec = nn.Parameter(torch.randn(n_rec, n_rec, generator=gen) * g / n_rec ** 0.5)
        self.b = nn.Parameter(torch.zeros(n_rec))
        self.w_out = nn.Parameter(torch.randn(n_out, n_rec, generator=gen) / n_rec ** 0.5)
        self.b_out = nn.Parameter(torch.zeros(n_out))
        if readout == "input":
            with torch.no_grad():
                self.w_out.copy_((self.w_in / self.w_in.square().sum(0)).T)
        self.learn, self.readout = learn, readout
        if learn == "recurrent":
            for fixed in (self.w_in, self.w_out, self.b_out):
                fixed.requires_grad_(False)

    def params(self) -> TanhRNNParameters:
        return TanhRNNParameters(self.w_in, self.w_rec, self.b, self.alpha)

    def recurrent_weight(self) -> torch.Tensor:
        return self.w_rec

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step ``F(h; x)``: the map whose fixed points ``h* = F(h*; x)`` the fixed-point finder looks for."""
        return tanh_rnn_step(x, h, self.params())[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[-1] != self.n_in:
            raise ValueError(f"RateRNN: input must be (T, B, n_in={self.n_in}), got {tuple(x.shape)}")
        p = self.params()
        h = x.new_zeros(x.shape[1], self.n_rec)
        hs = []
        for t in range(x.shape[0]):
            _, h = tanh_rnn_step(x[t], h, p)
            hs.append(h)
        hs = torch.stack(hs)
        return hs @ self.w_out.T + self.b_out, hs


class SignedTargetObjective(Objective):
    """Signed targets on the loss mask's steps: label ``y`` asks output ``k = y // 2`` for ``s = +1`` (``y`` odd)
    or ``-1``. ``loss = mean_b mean_{t in mask} [(y_t[b, k_b] - s_b)^2 + silent sum_{j != k_b} y_t[b, j]^2]``; a
    trial is correct when the sign of its output's mean over the masked steps is ``s``. With ``silent = False`` the
    outputs of other tasks are free (not in the loss); with ``silent = True`` they are asked for 0."""

    def __init__(self, silent: bool = False):
        self.silent = bool(silent)

    def _parts(self, output: Any, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = output[0]
        labels = torch.as_tensor(batch.y).long()
        k, s = labels // 2, (labels % 2).to(y.dtype) * 2 - 1
        if int(k.max()) >= y.shape[-1]:
            raise ValueError(f"SignedTargetObjective: label {int(labels.max())} asks for output {int(k.max())}, but "
                             f"the model has {y.shape[-1]} outputs")
        mask = torch.ones(y.shape[0], dtype=y.dtype) if batch.mask is None else torch.as_tensor(batch.mask).to(y.dtype)
        out = y.gather(2, k.view(1, -1, 1).expand(y.shape[0], -1, 1)).squeeze(2)     # (T, B): each trial's output
        return out, s, mask

    def per_trial_loss(self, output: Any, batch: Batch) -> torch.Tensor:
        out, s, mask = self._parts(output, batch)
        err = (out - s) ** 2
        if self.silent:                                  # the other outputs' squares: all outputs' minus the own
            err = err + (output[0] ** 2).sum(2) - out ** 2
        return (err * mask[:, None]).sum(0) / mask.sum()

    def loss(self, output: Any, batch: Batch) -> torch.Tensor:
        return self.per_trial_loss(output, batch).mean()

    def metric_sums(self, output: Any, batch: Batch) -> dict[str, float]:
        out, s, mask = self._parts((output[0].detach(), None), batch)
        mean = (out * mask[:, None]).sum(0) / mask.sum()
        return {"accuracy": float((torch.sign(mean) == s).sum()),
                "loss": float(self.per_trial_loss((output[0].detach(), None), batch).sum())}
