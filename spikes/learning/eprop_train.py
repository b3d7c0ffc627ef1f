"""Training loops for the e-prop layer ``spikes.layers.eprop_recurrent.EpropRecurrent`` (the network of
``spikes.models.rsnn.RSNN``): e-prop (three feedback variants) and BPTT, on the cue task.

``rule`` is ``"eprop-symmetric"``, ``"eprop-random"``, ``"eprop-adaptive"`` (``spikes.learning.eprop``, online)
or ``"bptt"`` (autograd through the whole sequence, no stop-gradient). Both minimise the task loss plus the
firing-rate regulariser ``c_reg sum_j (f_j - f_target)^2`` with Adam.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from spikes.datasets.tasks.cue import CueTaskConfig, cue_task
from spikes.datasets.tasks.digits import digits_sequences
from spikes.layers.eprop_recurrent import EpropRecurrent, RSNNConfig
from spikes.learning.eprop import EProp, EPropConfig
from spikes.learning.eprop_losses import SequenceCrossEntropy

RULES = ("eprop-symmetric", "eprop-random", "eprop-adaptive", "bptt")


@dataclass
class TrainLog:
    """Per-iteration training loss and error, and the final test error."""

    loss: list[float] = field(default_factory=list)
    error: list[float] = field(default_factory=list)
    rate_hz: list[float] = field(default_factory=list)
    test_error: float = float("nan")
    seconds: float = 0.0


class Trainer:
    """One model and one rule; ``train_step(x, loss)`` does one batch, returns ``(loss, readout)``."""

    def __init__(self, model: EpropRecurrent, rule: str, lr: float = 5e-3, c_reg: float = 0.0, f_target: float = 10.0,
                 weight_decay: float = 0.0, update_every: int | None = None, seed: int = 0):
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        self.model, self.rule = model, rule
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.c_reg, self.f0 = c_reg, f_target * model.cfg.dt / 1000.0
        self.update_every = update_every
        self.eprop = None
        if rule != "bptt":
            self.eprop = EProp(model, EPropConfig(feedback=rule.split("-")[1], c_reg=c_reg, f_target=f_target,
                                                  weight_decay=weight_decay, seed=seed), optimizer=self.optimizer)

    def train_step(self, x: torch.Tensor, loss) -> tuple[float, torch.Tensor, float]:
        """One batch; returns (task loss, readout y (T, B, K), mean rate in spikes per step)."""
        if self.eprop is not None:
            self.eprop.begin(x.shape[1])
            rate = None
            ys = []
            with torch.no_grad():
                for t in range(x.shape[0]):
                    ys.append(self.eprop.step(x[t], loss).y)
                    if self.update_every and (t + 1) % self.update_every == 0 and t + 1 < x.shape[0]:
                        self.eprop.apply()
                rate = float(self.eprop.firing_rates().mean())
                self.eprop.apply()
            return self.eprop.loss_sum, torch.stack(ys), rate
        y, z = self.model(x)
        f = z.mean(dim=(0, 1))
        task = loss.total(y)
        total = task + self.c_reg * ((f - self.f0) ** 2).sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        with torch.no_grad():
            self.model.w_rec.mul_(self.model.no_self)
        return float(task.detach()), y.detach(), float(f.detach().mean())

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]


def train_cue(rule: str = "eprop-symmetric", n_adaptive: int = 50, n_rec: int = 100, dt: float = 1.0,
              iterations: int = 200, batch: int = 64, lr: float = 5e-3, c_reg: float = 1.0,
              weight_decay: float = 1e-2, test_batch: int = 256, seed: int = 0, task_kwargs: dict | None = None,
              progress: bool = True, log_every: int = 10) -> TrainLog:
    """Train on the cue task (``spikes.datasets.tasks.cue``) with step ``dt`` ms; returns the log.

    Network of e-prop's Fig. 3: ``n_rec - n_adaptive`` LIF + ``n_adaptive`` ALIF, tau_m 20, tau_a 2000,
    tau_out 20 ms, v_th 0.6, n_ref 5 ms. Batch i uses seed ``seed * 100003 + i``; the test set seed
    ``seed * 100003 + 99991`` (disjoint draws).
    """
    torch.manual_seed(seed)
    tcfg = CueTaskConfig(dt=dt, **(task_kwargs or {}))
    cfg = RSNNConfig(n_in=tcfg.n_in, n_rec=n_rec, n_out=2, n_adaptive=n_adaptive, dt=dt, tau_m=20.0,
                     tau_a=2000.0, tau_out=20.0, v_th=0.6, n_ref=int(round(5.0 / dt)))
    model = EpropRecurrent(cfg, seed=seed)
    trainer = Trainer(model, rule, lr=lr, c_reg=c_reg, weight_decay=weight_decay, seed=seed)
    log = TrainLog()
    start = time.perf_counter()
    bar = tqdm(range(iterations), disable=not progress, desc=f"{rule} {n_adaptive} ALIF")
    for i in bar:
        b = cue_task(batch, tcfg, seed=seed * 100003 + i)
        loss = SequenceCrossEntropy(b.labels, 2, tcfg.T, b.mask)
        value, y, rate = trainer.train_step(b.x, loss)
        log.loss.append(value)
        log.error.append(float(loss.errors(y).mean()))
        log.rate_hz.append(rate * 1000.0 / dt)
        if i % log_every == 0 or i == iterations - 1:
            k = min(log_every, len(log.error))
            bar.set_postfix(loss=f"{value:.3f}", err=f"{sum(log.error[-k:]) / k:.3f}",
                            rate=f"{log.rate_hz[-1]:.1f}Hz")
    b = cue_task(test_batch, tcfg, seed=seed * 100003 + 99991)
    y = trainer.evaluate(b.x)
    log.test_error = float(SequenceCrossEntropy(b.labels, 2, tcfg.T, b.mask).errors(y).mean())
    log.seconds = time.perf_counter() - start
    return log


def train_digits(rule: str = "eprop-symmetric", n_rec: int = 100, n_adaptive: int = 0, n_time_bins: int = 20,
                 epochs: int = 1, batch: int = 32, lr: float = 2e-3, c_reg: float = 0.0, weight_decay: float = 1e-2,
                 seed: int = 0, max_batches: int | None = None, progress: bool = True) -> TrainLog:
    """Classify the embedded digits event set (``spikes.datasets.tasks.digits``), frames flattened to
    2 H W input channels, one step per time bin (300 ms / ``n_time_bins``); cross-entropy on every step,
    decision by the mean softmax. Returns the log with the test-split error."""
    torch.manual_seed(seed)
    x_train, y_train = digits_sequences("train", n_time_bins, seed=0)
    x_test, y_test = digits_sequences("test", n_time_bins, seed=0)
    dt = 300.0 / n_time_bins
    cfg = RSNNConfig(n_in=x_train.shape[-1], n_rec=n_rec, n_out=10, n_adaptive=n_adaptive, dt=dt, tau_m=20.0,
                     tau_a=200.0, tau_out=20.0, v_th=0.6, n_ref=0)
    model = EpropRecurrent(cfg, seed=seed)
    trainer = Trainer(model, rule, lr=lr, c_reg=c_reg, weight_decay=weight_decay, seed=seed)
    g = torch.Generator().manual_seed(seed)
    log = TrainLog()
    start = time.perf_counter()
    T = x_train.shape[0]
    for epoch in range(epochs):
        order = torch.randperm(x_train.shape[1], generator=g).split(batch)[:max_batches]
        for idx in tqdm(order, disable=not progress, desc=f"{rule} digits epoch {epoch}"):
            loss = SequenceCrossEntropy(y_train[idx], 10, T)
            value, y, rate = trainer.train_step(x_train[:, idx], loss)
            log.loss.append(value)
            log.error.append(float(loss.errors(y).mean()))
            log.rate_hz.append(rate * 1000.0 / dt)
    errors = []
    for idx in torch.arange(x_test.shape[1]).split(256):
        y = trainer.evaluate(x_test[:, idx])
        errors.append(SequenceCrossEntropy(y_test[idx], 10, T).errors(y))
    log.test_error = float(torch.cat(errors).mean())
    log.seconds = time.perf_counter() - start
    return log
