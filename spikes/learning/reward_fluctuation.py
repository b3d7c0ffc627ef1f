"""Lifetime learning by reward-modulated synaptic fluctuations (``--rule fluctuation``), after Yoder, Anderson, Wang
& Izquierdo (2022; reference code rl_ctrnn), building on Wei & Webb (2018). No gradients, no optimizer.

Every fluctuating parameter (weight or bias) ``W_ij`` oscillates around its centre ``C_ij`` (the model's parameter)::

    W_ij(t) = C_ij + s_ij A_ij sin(2 pi phi_ij(t)),      phi_ij += dt / P_ij,

with a random sign ``s_ij``, and a new period ``P_ij ~ U[period_min, period_max]`` drawn whenever a cycle ends.
The network runs on the fluctuating parameters; its instantaneous performance ``p(t)`` (the objective's
``performance``: for the oscillation task ``mean_i |o_i(t) - o_i(t-1)| / dt``) enters a reward, the change of
running performance::

    R(t) = mean(p over the last `window` time units) - mean(p over the `window` units that ended `delay` ago)

(0 until ``window + delay`` time units have been seen). A positive reward pulls the centres toward the current
weights and shrinks the fluctuations, a negative one widens them::

    C <- clip(C + learn_rate R (W - C), -centre_bound, centre_bound),    A <- clip(A - conv_rate R, 0, max_flux)

at every step (Wei & Webb's equations 3 and 4).

So with ``R = 0`` the centres do not move at all. The rule keeps the whole lifetime between batches: the
amplitudes, phases, periods and signs, the network's state and the performance history, all in its state dict
(an interrupted run resumes exactly). A batch is one segment of the lifetime ``x (T, 1, n_in)`` (batch size 1);
networks: anything with ``fluctuating()``, ``initial_state(batch)`` and ``step(i, state, params)``
(``spikes.models.ctrnn``).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import torch

from spikes.learning.rule import Batch, LearningRule, Objective, StepOutput, register_rule
from spikes.options import option


def fluctuating_value(centre: torch.Tensor, amplitude: torch.Tensor, sign: torch.Tensor,
                      phase: torch.Tensor) -> torch.Tensor:
    """``C + s A sin(2 pi phi)``."""
    return centre + sign * amplitude * torch.sin(2 * math.pi * phase)


def reward_update(centre: torch.Tensor, current: torch.Tensor, amplitude: torch.Tensor, reward: float,
                  learn_rate: float, conv_rate: float, max_flux: float,
                  centre_bound: float = float("inf")) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clip(C + learn_rate R (W - C), +-centre_bound), clip(A - conv_rate R, 0, max_flux))`` (module docstring);
    ``R = 0`` returns the centres unchanged."""
    if reward == 0.0:
        return centre, amplitude.clamp(0.0, max_flux)
    return ((centre + (learn_rate * reward) * (current - centre)).clamp(-centre_bound, centre_bound),
            (amplitude - conv_rate * reward).clamp(0.0, max_flux))


class RunningReward:
    """``R(t)`` from the performance history (module docstring): ``window`` and ``delay`` in steps."""

    def __init__(self, window: int, delay: int):
        if window < 1 or delay < 1:
            raise ValueError(f"RunningReward: window and delay must be >= 1 step, got {window}, {delay}")
        self.window, self.delay = window, delay
        self.history: deque[float] = deque(maxlen=window + delay)

    def push(self, p: float) -> float:
        """Add ``p(t)``; return ``R(t)``."""
        self.history.append(float(p))
        if len(self.history) < self.window + self.delay:
            return 0.0
        h = list(self.history)
        return sum(h[-self.window:]) / self.window - sum(h[:self.window]) / self.window


@register_rule
class RewardFluctuation(LearningRule):
    """Reward-modulated synaptic fluctuations (CTRNNs, recurrent LIF populations; no gradients)."""

    name = "fluctuation"
    uses_optimizer = False
    data_parallel = False

    @dataclass(frozen=True)
    class Options:
        learn_rate: float = option(0.1, "how fast a reward pulls centres toward the current weights (rl_ctrnn's "
                                        "oscillator runs: 0.008 with windows of hundreds of time units)", min=0.0)
        conv_rate: float = option(0.1, "how fast a reward shrinks the fluctuation amplitude", min=0.0)
        init_flux: float = option(4.0, "initial fluctuation amplitude A", min=0.0)
        max_flux: float = option(10.0, "largest fluctuation amplitude", min=0.0)
        period_min: float = option(20.0, "shortest fluctuation period (time units; longer than window + delay, so the "
                                         "weights are still near what earned a reward when it arrives)", min=0.0,
                                   min_exclusive=True)
        period_max: float = option(40.0, "longest fluctuation period (time units)", min=0.0, min_exclusive=True)
        window: float = option(10.0, "running-performance window (time units)", min=0.0, min_exclusive=True)
        delay: float = option(5.0, "how far back the compared window ends (time units)", min=0.0,
                              min_exclusive=True)
        flux_bias: bool = option(False, "biases fluctuate and learn too (false: only the weights)")
        centre_bound: float = option(16.0, "centres stay within [-bound, bound] (Beer's weight range)", min=0.0,
                                     min_exclusive=True)
        reward_scale: float = option(1.0, "reward multiplier (0: the rule never changes the centres)", min=0.0)

    def __init__(self, options=None):
        super().__init__(options)
        if self.options.period_max < self.options.period_min:
            raise ValueError(f"rule 'fluctuation': period_max ({self.options.period_max}) must be >= period_min "
                             f"({self.options.period_min})")
        self.generator = torch.Generator()
        self.flux: dict[str, dict[str, torch.Tensor]] | None = None
        self.net_state: Any = None
        self.prev_out: torch.Tensor | None = None
        self.reward: RunningReward | None = None
        self.steps = 0
        self.initial: dict[str, torch.Tensor] = {}           # centres at the start (weight_change)

    def setup(self, model, optimizer, seed: int = 0) -> None:
        super().setup(model, optimizer, seed)
        self.generator.manual_seed(seed + 6)
        self._init_flux(model)
        self.initial = {k: v.detach().clone() for k, v in model.fluctuating().items()}

    def _names(self, model) -> list[str]:
        return [n for n in model.fluctuating() if self.options.flux_bias or n != "bias"]

    def _periods(self, shape, dtype) -> torch.Tensor:
        o = self.options
        return o.period_min + (o.period_max - o.period_min) * torch.rand(shape, generator=self.generator, dtype=dtype)

    def _init_flux(self, model) -> None:
        dt = float(model.dt)
        o = self.options
        self.flux = {}
        for name in self._names(model):
            c = model.fluctuating()[name]
            sign = torch.where(torch.rand(c.shape, generator=self.generator) < 0.5, -1.0, 1.0).to(c.dtype)
            self.flux[name] = {"amplitude": torch.full_like(c, o.init_flux).clamp(0.0, o.max_flux),
                               "phase": torch.zeros_like(c), "period": self._periods(c.shape, c.dtype), "sign": sign}
        self.reward = RunningReward(max(1, round(o.window / dt)), max(1, round(o.delay / dt)))
        self.net_state, self.prev_out, self.steps = None, None, 0

    def check(self, model, objective: Objective) -> None:
        for attr in ("fluctuating", "initial_state", "step", "dt"):
            if not hasattr(model, attr):
                raise ValueError(f"rule 'fluctuation' trains recurrent networks with fluctuating synapses (model kinds "
                                 f"ctrnn, lif_population); {type(model).__name__} has no {attr}")
        if not hasattr(objective, "performance"):
            raise ValueError(f"rule 'fluctuation' needs an instantaneous performance for its reward; the objective "
                             f"{type(objective).__name__} has none (the oscillation task's has)")

    @torch.no_grad()
    def train_step(self, model, batch: Batch, objective: Objective) -> StepOutput:
        x = batch.x
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"rule 'fluctuation': a batch is one segment of a lifetime (T, 1, n_in); got "
                             f"{tuple(x.shape)} (set train.batch_size = 1)")
        o = self.options
        dt = float(model.dt)
        centres = model.fluctuating()
        names = list(self.flux)
        if self.net_state is None:
            self.net_state = model.initial_state(1)
        outs, rewards = [], 0.0
        for t in range(x.shape[0]):
            current = {n: fluctuating_value(centres[n], f["amplitude"], f["sign"], f["phase"])
                       for n, f in self.flux.items()}
            params = {**{n: c for n, c in centres.items()}, **current}
            out, self.net_state = model.step(x[t], self.net_state, params)
            outs.append(out)
            if self.prev_out is not None:
                r = o.reward_scale * self.reward.push(float(objective.performance(self.prev_out, out)[0]))
                rewards += r
                for n in names:
                    f = self.flux[n]
                    new_c, f["amplitude"] = reward_update(centres[n].data, current[n], f["amplitude"], r,
                                                          o.learn_rate, o.conv_rate, o.max_flux, o.centre_bound)
                    if new_c is not centres[n].data:
                        centres[n].data.copy_(new_c)
            self.prev_out = out
            for n in names:
                f = self.flux[n]
                f["phase"] = f["phase"] + dt / f["period"]
                ended = f["phase"] >= 1.0
                if bool(ended.any()):
                    f["phase"] = torch.where(ended, f["phase"] - 1.0, f["phase"])
                    f["period"] = torch.where(ended, self._periods(f["period"].shape, f["period"].dtype), f["period"])
            self.steps += 1
        output = torch.stack(outs)
        amp = torch.cat([f["amplitude"].reshape(-1) for f in self.flux.values()]) if self.flux else torch.zeros(1)
        fit = objective.fitness(output) if hasattr(objective, "fitness") else None
        return StepOutput(float(-fit.mean()) if fit is not None else 0.0, output,
                          {"mean_reward": rewards / x.shape[0], "mean_amplitude": float(amp.mean())})

    def measurements(self, model) -> dict[str, dict[str, float]]:
        """``weight_change`` of every centre (``|C - C_start| / |C_start|``) and the final ``flux_amplitude``."""
        change = {n: float((c.detach() - self.initial[n]).norm() / self.initial[n].norm().clamp(min=1e-12))
                  for n, c in model.fluctuating().items() if n in self.initial}
        amplitude = {n: float(f["amplitude"].mean()) for n, f in (self.flux or {}).items()}
        return {"weight_change": change, "flux_amplitude": amplitude}

    def state_dict(self) -> dict[str, Any]:
        return {"initial": {k: v.clone() for k, v in self.initial.items()},
                "flux": {n: {k: v.clone() for k, v in f.items()} for n, f in (self.flux or {}).items()},
                "net_state": self.net_state, "prev_out": self.prev_out, "steps": self.steps,
                "history": list(self.reward.history) if self.reward else [], "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.flux = {n: {k: v.clone() for k, v in f.items()} for n, f in state["flux"].items()}
        self.net_state, self.prev_out, self.steps = state["net_state"], state["prev_out"], state["steps"]
        self.reward.history.clear()
        self.reward.history.extend(state["history"])
        self.generator.set_state(state["generator"])
        self.initial = {k: v.clone() for k, v in state.get("initial", self.initial).items()}
