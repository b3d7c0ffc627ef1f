"""e-prop (Bellec et al., Nat. Commun. 11:3625, 2020): online training of recurrent SNNs, forward in time.

For the layer ``spikes.layers.eprop_recurrent.EpropRecurrent`` (equations there and in
``spikes.neurons.eprop``), with presynaptic input ``p_i[t]`` =
``x_i[t]`` (input synapses) or ``z_i[t-1]`` (recurrent ones), e-prop keeps per synapse, for every sequence
of the batch, eligibility vectors and traces updated at every step and never stores the past::

    LIF   eps_ji[t]  = alpha eps_ji[t-1] + p_i[t]                                   (= epsv, shared by all j)
    ALIF  epsa_ji[t] = psi_j[t-1] epsv_ji[t-1] + (rho - psi_j[t-1] beta_j) epsa_ji[t-1]
          e_ji[t]    = psi_j[t] (epsv_ji[t] - beta_j epsa_ji[t])                      (LIF: beta_j = 0)
          Fe_ji[t]   = kappa Fe_ji[t-1] + e_ji[t]                                      (readout filter)
    learning signal  L_j[t] = sum_k B_jk dE/dy_k[t]      (dE/dy = y - y* or pi - pi*, see eprop_losses)
    gradient         g_ji  += sum_b L_bj[t] Fe_bji[t]
    readout          g_out_kj += sum_b dE/dy_bk[t] Fz_bj[t],  Fz = kappa Fz + z;  g_b_k += sum_b dE/dy_bk[t] F1[t]
    regulariser      E_reg = c_reg sum_j (f_j - f0)^2,  g_ji += 2 c_reg (f_j - f0) <e_ji>   (f: rate per step)

Feedback ``B``: ``symmetric`` (B = Wout^T: with it, e-prop equals autograd BPTT with z[t-1] detached in the
recurrent input and reset, which ``tests/test_eprop_equivalence.py`` checks), ``random`` (fixed, N(0, 1/N)),
``adaptive`` (Kolen-Pollack: B starts random and receives the same update as Wout^T; both decay by
``lr * weight_decay`` per update, so they align).

Memory: ``epsv (B, n_in + N)``, ``epsa (B, N_adaptive, n_in + N)``, ``Fe (B, N, n_in + N)`` and the gradient
accumulators; nothing grows with the sequence length. Weights may be updated every ``update_every`` steps
during a sequence (traces carry on) or once at its end. All under ``torch.no_grad()``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from spikes.layers.eprop_recurrent import EpropRecurrent, RSNNStep

FEEDBACKS = ("symmetric", "random", "adaptive")


@dataclass(frozen=True)
class EPropConfig:
    """Options of the e-prop learner (``f_target`` in Hz, turned into spikes per step with the model's dt)."""

    feedback: str = "symmetric"
    c_reg: float = 0.0
    f_target: float = 10.0
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.feedback not in FEEDBACKS:
            raise ValueError(f"EPropConfig.feedback must be one of {FEEDBACKS}, got {self.feedback!r}")
        if self.c_reg < 0 or self.f_target < 0 or self.weight_decay < 0:
            raise ValueError("EPropConfig.c_reg, f_target and weight_decay must be >= 0, got "
                             f"{self.c_reg}, {self.f_target}, {self.weight_decay}")


def find_eprop_layer(model: nn.Module) -> EpropRecurrent:
    """The one ``EpropRecurrent`` that e-prop trains in ``model`` (``model`` itself if it is one).

    Raises ``TypeError`` for a non-module and ``ValueError``, naming the model and the layers found, when it
    holds none or several (pass the layer itself then).
    """
    if isinstance(model, EpropRecurrent):
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"e-prop acts on an EpropRecurrent layer or a torch module holding one, got "
                        f"{type(model).__name__}")
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, EpropRecurrent)]
    if len(found) != 1:
        listed = f": {', '.join(name for name, _ in found)}" if found else ""
        raise ValueError(f"e-prop trains one EpropRecurrent layer; model {type(model).__name__} has "
                         f"{len(found)}{listed} (pass the layer to train)")
    return found[0][1]


class EProp:
    """Online e-prop learner for an ``EpropRecurrent`` layer: ``begin(B)``, ``step(x[t], loss)`` per step,
    ``apply()``.

    ``layer_or_model`` is the layer, or a model holding exactly one (``find_eprop_layer``; ``self.layer``).
    ``run(x, loss, update_every)`` does a whole sequence. ``gradients()`` gives the accumulated gradients
    (same names as the layer's parameters); ``apply()`` hands them to ``optimizer`` (default: plain SGD with
    ``lr`` on the layer's parameters) and clears them.
    """

    def __init__(self, layer_or_model: nn.Module, config: EPropConfig = EPropConfig(),
                 optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3):
        self.model = layer_or_model
        self.layer = layer = find_eprop_layer(layer_or_model)
        self.cfg = config
        self.optimizer = optimizer or torch.optim.SGD(layer.parameters(), lr=lr)
        c = layer.cfg
        self.n_lif = c.n_rec - c.n_adaptive
        self.f0 = config.f_target * c.dt / 1000.0
        dtype = layer.w_in.dtype
        if config.feedback == "symmetric":
            self.feedback = None
        else:
            g = torch.Generator().manual_seed(config.seed)
            self.feedback = (torch.randn(c.n_rec, c.n_out, generator=g, dtype=torch.float64)
                             / math.sqrt(c.n_rec)).to(dtype)
        self._zero_grads()
        self.state = None

    # ----------------------------------------------------------------------------------------------
    def feedback_matrix(self) -> torch.Tensor:
        """``B`` (N, K): ``Wout^T`` for symmetric feedback, else the random / adaptive matrix."""
        return self.layer.w_out.detach().t() if self.feedback is None else self.feedback

    def _zero_grads(self) -> None:
        m = self.layer
        self.g_w = torch.zeros(m.cfg.n_rec, m.cfg.n_in + m.cfg.n_rec, dtype=m.w_in.dtype)
        self.g_out = torch.zeros_like(m.w_out, requires_grad=False)
        self.g_b = torch.zeros_like(m.b_out, requires_grad=False)
        self.sum_e = torch.zeros_like(self.g_w) if self.cfg.c_reg else None
        self.sum_z = torch.zeros(m.cfg.n_rec, dtype=m.w_in.dtype)
        self.count = 0

    def begin(self, batch: int) -> None:
        """Start a batch of sequences: network at rest, traces at zero (accumulated gradients are kept)."""
        m, c = self.layer, self.layer.cfg
        dt = m.w_in.dtype
        p = c.n_in + c.n_rec
        self.net = m.initial_state(batch)
        self.eps_v = torch.zeros(batch, p, dtype=dt)
        self.eps_a = torch.zeros(batch, c.n_adaptive, p, dtype=dt) if c.n_adaptive else None
        self.psi_prev = torch.zeros(batch, c.n_rec, dtype=dt)
        self.fe = torch.zeros(batch, c.n_rec, p, dtype=dt)
        self.fz = torch.zeros(batch, c.n_rec, dtype=dt)
        self.f1 = 0.0
        self.t = 0
        self.loss_sum = 0.0

    @torch.no_grad()
    def step(self, x: torch.Tensor, loss=None) -> RSNNStep:
        """Advance one step with input ``x (B, n_in)``; with ``loss`` (``eprop_losses``), accumulate gradients."""
        m, c = self.layer, self.layer.cfg
        pre = torch.cat([x.to(self.eps_v.dtype), self.net.z], dim=1)
        out, self.net = m.step(x, self.net)
        psi = out.psi
        ad = self.n_lif
        if self.eps_a is not None:  # epsa[t] uses psi[t-1], epsv[t-1]
            beta = m.betas[ad:]
            pp = self.psi_prev[:, ad:, None]
            torch.baddbmm(self.eps_a.mul_(c.rho - pp * beta[None, :, None]), pp, self.eps_v[:, None, :],
                          out=self.eps_a)
        self.eps_v.mul_(c.alpha).add_(pre)
        self.psi_prev = psi
        # Fe = kappa Fe + psi epsv - psi beta epsa
        # (outer products as baddbmm: BLAS, several times faster than broadcast elementwise ops on CPU)
        torch.baddbmm(self.fe, psi[:, :, None], self.eps_v[:, None, :], beta=c.kappa, out=self.fe)
        if self.eps_a is not None:
            self.fe[:, ad:].addcmul_(psi[:, ad:, None] * (-m.betas[ad:])[None, :, None], self.eps_a)
        self.fz.mul_(c.kappa).add_(out.z)
        self.f1 = c.kappa * self.f1 + 1.0
        if self.cfg.c_reg:
            self.sum_e.add_(psi.t() @ self.eps_v)
            if self.eps_a is not None:
                self.sum_e[ad:].sub_(torch.einsum("bj,bjp->jp", psi[:, ad:], self.eps_a) * m.betas[ad:, None])
        self.sum_z.add_(out.z.sum(0))
        self.count += x.shape[0]
        if loss is not None:
            e_t, dy = loss.step(self.t, out.y)
            self.loss_sum += float(e_t)
            learning_signal = dy @ self.feedback_matrix().t()
            self.g_w.add_(torch.bmm(learning_signal.t()[:, None, :], self.fe.transpose(0, 1)).squeeze(1))
            self.g_out.add_(dy.t() @ self.fz)
            self.g_b.add_(dy.sum(0) * self.f1)
        self.t += 1
        return out

    def firing_rates(self) -> torch.Tensor:
        """Mean spikes per step of each neuron since the last ``apply()``."""
        return self.sum_z / max(self.count, 1)

    def gradients(self) -> dict[str, torch.Tensor]:
        """Accumulated gradients, task loss plus firing-rate regulariser, by parameter name."""
        c = self.layer.cfg
        g_w = self.g_w.clone()
        if self.cfg.c_reg and self.count:
            f = self.firing_rates()
            g_w += (2.0 * self.cfg.c_reg / self.count) * (f - self.f0)[:, None] * self.sum_e
        g_rec = g_w[:, c.n_in:] * self.layer.no_self
        return {"w_in": g_w[:, :c.n_in].contiguous(), "w_rec": g_rec, "w_out": self.g_out.clone(),
                "b_out": self.g_b.clone()}

    def regularizer(self) -> float:
        """``c_reg sum_j (f_j - f0)^2`` on the rates since the last ``apply()``."""
        return float(self.cfg.c_reg * ((self.firing_rates() - self.f0) ** 2).sum())

    @torch.no_grad()
    def apply(self) -> None:
        """One optimizer step with the accumulated gradients; adaptive feedback follows Wout; then clear."""
        grads = self.gradients()
        params = dict(self.layer.named_parameters())
        w_out_before = params["w_out"].detach().clone()
        for name, p in params.items():
            p.grad = grads[name].to(p.dtype)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.layer.w_rec.mul_(self.layer.no_self)
        if self.cfg.feedback == "adaptive":
            self.feedback.add_((params["w_out"] - w_out_before).t())
            if self.cfg.weight_decay:
                shrink = 1.0 - self.optimizer.param_groups[0]["lr"] * self.cfg.weight_decay
                self.feedback.mul_(shrink)
                params["w_out"].mul_(shrink)
        self._zero_grads()

    def run(self, x: torch.Tensor, loss=None, update_every: int | None = None,
            apply: bool = True) -> torch.Tensor:
        """Run a batch ``x (T, B, n_in)``; update every ``update_every`` steps and (if ``apply``) at the end.

        Returns the readout ``y (T, B, K)``; ``self.spikes`` keeps the run's spikes ``z (T, B, N)`` and
        ``self.run_regularizer`` the firing-rate regulariser of every applied segment, summed.
        """
        if x.dim() != 3 or x.shape[-1] != self.layer.cfg.n_in:
            raise ValueError(f"e-prop input must be (T, B, n_in={self.layer.cfg.n_in}), got {tuple(x.shape)}")
        if update_every is not None and update_every < 1:
            raise ValueError(f"update_every must be >= 1 step, got {update_every}")
        self.begin(x.shape[1])
        ys, zs = [], []
        self.run_regularizer = 0.0
        for t in range(x.shape[0]):
            out = self.step(x[t], loss)
            ys.append(out.y)
            zs.append(out.z)
            if update_every and (t + 1) % update_every == 0 and t + 1 < x.shape[0]:
                self.run_regularizer += self.regularizer()
                self.apply()
        if apply:
            self.run_regularizer += self.regularizer()
            self.apply()
        self.spikes = torch.stack(zs)
        return torch.stack(ys)
