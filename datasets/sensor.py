"""A simple DVS pixel model turning an intensity video into events (used by the embedded data sets).

Per pixel, with log intensity L(t) = log(I(t) + eps) sampled every ``dt_us`` (= the refractory period):

- the pixel keeps a reference level L_ref (initialised to L(0));
- ON event when L - L_ref >= C_on[pixel], OFF event when L_ref - L >= C_off[pixel];
  thresholds carry fixed per-pixel mismatch, C ~ N(C0, sigma_C), clipped to >= 0.25 C0;
- refractory period: at most one event per pixel per step (``dt_us``); the reference still moves by
  whole thresholds, L_ref += sign * C * floor(|L - L_ref| / C), so extra crossings are swallowed;
- each event's time is uniformly jittered within its step;
- background activity: Poisson noise events at ``noise_hz`` per pixel, random polarity.

All randomness comes from the ``numpy.random.Generator`` passed in (deterministic by seed).
Frames are processed as a batch (B, H, W) so many samples are simulated at once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm


@dataclass(frozen=True)
class DVSParameters:
    """Sensor model parameters (log-intensity units, microseconds, Hz)."""

    threshold: float = 0.4
    threshold_sigma: float = 0.05
    eps: float = 0.1
    dt_us: int = 1000
    noise_hz: float = 0.2

    def __post_init__(self) -> None:
        if self.threshold <= 0 or self.threshold_sigma < 0 or self.eps <= 0 or self.dt_us <= 0 or self.noise_hz < 0:
            raise ValueError(f"DVSParameters: thresholds, eps and dt_us must be positive, noise_hz >= 0; got {self}")


def simulate_dvs(
    render: Callable[[int], np.ndarray],
    n_steps: int,
    shape: tuple[int, int, int],
    params: DVSParameters,
    rng: np.random.Generator,
    progress: bool = True,
    desc: str = "DVS simulation",
) -> tuple[np.ndarray, ...]:
    """Simulate ``n_steps`` steps of a batch of B pixel arrays of size H x W.

    ``render(k)`` returns the intensity (B, H, W) in [0, 1] at time ``k * dt_us``.
    Returns flat arrays ``(b, x, y, t_us, p)`` sorted by sample then time.
    """
    threads = torch.get_num_threads()
    # one thread: on a shared, oversubscribed machine torch's thread barrier costs ms per op
    torch.set_num_threads(1)
    try:
        return _simulate(render, n_steps, shape, params, rng, progress, desc)
    finally:
        torch.set_num_threads(threads)


def _simulate(render, n_steps, shape, params, rng, progress, desc):
    B, H, W = shape
    c0, sig = params.threshold, params.threshold_sigma
    c_on = torch.from_numpy(np.maximum(rng.normal(c0, sig, (H, W)), 0.25 * c0).astype(np.float32))
    c_off = torch.from_numpy(np.maximum(rng.normal(c0, sig, (H, W)), 0.25 * c0).astype(np.float32))
    # torch for the per-step elementwise work: several times faster than numpy here
    ref = torch.log(torch.as_tensor(render(0), dtype=torch.float32) + params.eps)
    L = torch.empty_like(ref)
    out_b, out_y, out_x, out_t, out_p = [], [], [], [], []
    for k in tqdm(range(1, n_steps), desc=desc, disable=not progress, leave=False, mininterval=1.0):
        torch.log(torch.as_tensor(render(k), dtype=torch.float32) + params.eps, out=L)
        d = L - ref
        n_on = torch.floor(d / c_on).clamp_(min=0)
        n_off = torch.floor(-d / c_off).clamp_(min=0)
        ref += n_on * c_on - n_off * c_off
        idx = torch.nonzero(n_on + n_off, as_tuple=True)
        if len(idx[0]):
            b, y, x = (i.numpy() for i in idx)
            out_b.append(b), out_y.append(y), out_x.append(x)
            out_t.append((k - 1) * params.dt_us + rng.integers(0, params.dt_us, len(b)))
            out_p.append((n_on[idx] > 0).numpy().astype(np.uint8))
    duration = n_steps * params.dt_us
    n_noise = rng.poisson(params.noise_hz * H * W * duration * 1e-6 * B)
    out_b.append(rng.integers(0, B, n_noise)), out_y.append(rng.integers(0, H, n_noise))
    out_x.append(rng.integers(0, W, n_noise)), out_t.append(rng.integers(0, duration, n_noise))
    out_p.append(rng.integers(0, 2, n_noise).astype(np.uint8))
    b, x, y, t, p = (np.concatenate(a) for a in (out_b, out_x, out_y, out_t, out_p))
    order = np.lexsort((t, b))
    return b[order], x[order], y[order], t[order].astype(np.int64), p[order]
