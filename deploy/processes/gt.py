"""A growth-transform (GT) neuron population as a custom Lava process (lava-nc 0.10, CPU), floating and fixed point.

``GTNeurons`` declares the population (Vars and ports); ``PyGTNeuronsModelFloat`` implements the same
step as ``spikes.neurons.growth_transform.gt_step`` in float64 (equations there) and ``PyGTNeuronsModelFixed``
the integer GT of ``spikes.deploy.gt_kernels`` (the same compiled kernels ``sim`` runs, so
``sim`` and ``lava-fixed`` agree bit for bit). The coupling Q is applied inside the process, so each step
uses the potentials of the same step as the torch model (a recurrent ``Dense`` would add a step of
latency). External current enters through ``a_in`` and is added to ``bias``: ``b[n] = bias + a_in[n]``
(fixed point: ``(a_in << 6) + (bias << bias_exp)``). Per step the process sends the spikes ``s[n]`` on
``s_out`` and the potential ``v[n]`` they were read from on ``v_out``. Until step ``onset`` the population
holds ``v0`` and sends zeros (it starts with its first input); the bias acts from step ``bias_onset``.

In fixed point the same Vars hold integers (as Lava's own LIF does): ``q`` (8-bit, with ``q_exp``), ``bias``
(the mantissa), ``lam`` and ``i_psi`` in units of ``2**-frac_bits vc``, ``a`` the 12-bit factor
``round(4096 a)``, ``v0`` the integer potential; ``vc`` is unused. Only the constant modulation runs in
fixed point.

``run_gt_lava`` builds ``RingBuffer -> Dense -> GTNeurons -> Extractor`` (spikes and potentials), runs
it and returns the traces. A Dense delivers at step n what it received at step n-1, so the input current
at step n is ``W @ inputs[n-1]`` (zero at the first step); ``torch_reference`` runs the torch model with
the same alignment. Running on a chip would need GT microcode through Intel's lava-loihi.
"""
from __future__ import annotations

import numpy as np
import torch

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.dense.process import Dense
from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
from lava.proc.io.source import RingBuffer

from spikes.neurons.growth_transform import GTParameters, Modulation, run_gt
from spikes.deploy.gt_kernels import LAMBDA_MARGIN, gt_fixed_run, gt_float_run

MODULATION_CODES = {"constant": 0, "adaptive": 1, "burst": 2}


class GTNeurons(AbstractProcess):
    """A population of ``n`` GT neurons coupled by the symmetric ``q`` ``(n, n)``.

    Parameters mirror ``spikes.neurons.growth_transform.GTParameters`` and ``Modulation``; ``a`` is one
    value per neuron (or a scalar), ``v0`` the initial potential; ``onset``, ``bias_onset`` the steps at
    which the population starts and its bias switches on; ``frac_bits``, ``q_exp``, ``bias_exp`` are used
    in fixed point only (module docstring).
    """

    def __init__(self, *, q: np.ndarray, bias: np.ndarray | float = 0.0, lam: float = 20.0, vc: float = 1.0,
                 i_psi: float = 3.0, a: np.ndarray | float = 0.5, v0: float = -0.1, modulation: str = "constant",
                 depth: float = 0.95, gain: float = 0.2, decay: float = 0.99, kick: float = 2.0,
                 a_off: float = 0.01, c_high: float = 20.0, c_low: float = 5.0, onset: int = 0,
                 bias_onset: int | None = None, frac_bits: int = 0, q_exp: int = 0, bias_exp: int = 0,
                 name: str | None = None) -> None:
        q = np.asarray(q, dtype=np.float64)
        if q.ndim != 2 or q.shape[0] != q.shape[1]:
            raise ValueError(f"GTNeurons: q must be a square (n, n) matrix, got shape {q.shape}")
        if not np.allclose(q, q.T, atol=1e-6):
            raise ValueError("GTNeurons: q must be symmetric (the Hessian of the GT energy)")
        if modulation not in MODULATION_CODES:
            raise ValueError(f"GTNeurons: modulation must be one of {tuple(MODULATION_CODES)}, got {modulation!r}")
        if not lam > 0 or not vc > 0:
            raise ValueError(f"GTNeurons: lam and vc must be > 0, got lam={lam}, vc={vc}")
        bias_onset = onset if bias_onset is None else bias_onset
        if onset < 0 or bias_onset < onset:
            raise ValueError(f"GTNeurons: need 0 <= onset <= bias_onset, got onset={onset}, bias_onset={bias_onset}")
        n = q.shape[0]
        shape = (n,)
        super().__init__(shape=shape, name=name)
        full = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), shape).copy()  # noqa: E731
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v_out = OutPort(shape=shape)
        self.q = Var(shape=(n, n), init=q)
        self.bias = Var(shape=shape, init=full(bias))
        self.a = Var(shape=shape, init=full(a))
        self.v = Var(shape=shape, init=full(v0))
        self.c = Var(shape=shape, init=np.zeros(shape))
        self.gate = Var(shape=shape, init=np.ones(shape))
        self.constants = Var(shape=(10,), init=np.array(
            [lam, vc, i_psi, MODULATION_CODES[modulation], depth, gain, decay, kick, a_off, c_high], dtype=np.float64))
        self.c_low = Var(shape=(1,), init=np.array([c_low], dtype=np.float64))
        self.timing = Var(shape=(2,), init=np.array([onset, bias_onset]))
        self.exponents = Var(shape=(3,), init=np.array([frac_bits, q_exp, bias_exp]))


@implements(proc=GTNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGTNeuronsModelFloat(PyLoihiProcessModel):
    """Floating-point (float64) GT step, equations in ``spikes.neurons.growth_transform``."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    q: np.ndarray = LavaPyType(np.ndarray, np.float64)
    bias: np.ndarray = LavaPyType(np.ndarray, np.float64)
    a: np.ndarray = LavaPyType(np.ndarray, np.float64)
    v: np.ndarray = LavaPyType(np.ndarray, np.float64)
    c: np.ndarray = LavaPyType(np.ndarray, np.float64)
    gate: np.ndarray = LavaPyType(np.ndarray, np.float64)
    constants: np.ndarray = LavaPyType(np.ndarray, np.float64)
    c_low: np.ndarray = LavaPyType(np.ndarray, np.float64)
    timing: np.ndarray = LavaPyType(np.ndarray, int)
    exponents: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        lam, vc, i_psi, kind, depth, gain, decay, kick, a_off, c_high = self.constants
        a_in = np.asarray(self.a_in.recv(), dtype=np.float64)
        t = self.time_step - 1
        onset, bias_onset = int(self.timing[0]), int(self.timing[1])
        if kind == 0:      # constant modulation: the kernel sim-float runs
            n = self.v.shape[0]
            out_s, out_v = np.zeros((1, 1, n), np.uint8), np.zeros((1, 1, n))
            gt_float_run(a_in.reshape(1, 1, n), self.v.reshape(1, n), self.q, self.bias, lam, vc, i_psi, self.a,
                         onset, bias_onset, t, out_s, out_v)
            self.s_out.send(out_s[0, 0].astype(np.float64))
            self.v_out.send(out_v[0, 0])
            return
        if t < onset:
            self.s_out.send(np.zeros(self.v.shape))
            self.v_out.send(np.zeros(self.v.shape))
            return
        b = (self.bias if t >= bias_onset else 0.0) + a_in
        v = self.v.copy()
        s = (v > 0).astype(np.float64)
        g = b - self.q @ v - i_psi * s
        lam_i = np.maximum(lam, (1.0 + LAMBDA_MARGIN) * np.abs(g))
        u = vc * (vc * g + lam_i * v) / (v * g + lam_i * vc)
        self.c = decay * self.c + kick * s           # kind 1 or 2 here: constant modulation returned above
        if kind == 1:
            rest = 0.5 * (1.0 + depth * np.tanh(-gain * self.c))
        else:
            self.gate = np.where(self.c > c_high, 0.0, np.where(self.c < self.c_low[0], 1.0, self.gate))
            rest = a_off + (self.a - a_off) * self.gate
        a = s * self.a + (1.0 - s) * rest
        self.v = a * u + (1.0 - a) * v
        self.s_out.send(s)
        self.v_out.send(v)


@implements(proc=GTNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGTNeuronsModelFixed(PyLoihiProcessModel):
    """Fixed-point GT step (``spikes.deploy.gt_kernels.gt_fixed_run``), constant modulation."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    q: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    a: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    c: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    gate: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    constants: np.ndarray = LavaPyType(np.ndarray, np.float64)
    c_low: np.ndarray = LavaPyType(np.ndarray, np.float64)
    timing: np.ndarray = LavaPyType(np.ndarray, int)
    exponents: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        lam, _, psi, kind = self.constants[:4]
        if kind != 0:
            raise NotImplementedError("GTNeurons fixed_pt: only the constant modulation is implemented")
        n = self.v.shape[0]
        a_in = np.asarray(self.a_in.recv()).astype(np.int64).reshape(1, 1, n)
        frac, q_exp, bias_exp = (int(e) for e in self.exponents)
        v = self.v.astype(np.int64).reshape(1, n)
        out_s, out_v = np.zeros((1, 1, n), np.uint8), np.zeros((1, 1, n), np.int64)
        gt_fixed_run(a_in, v, self.q.astype(np.int64), q_exp, self.bias.astype(np.int64) << bias_exp, int(lam),
                     int(psi), frac, self.a.astype(np.int64), int(self.timing[0]), int(self.timing[1]),
                     self.time_step - 1, out_s, out_v, np.zeros((1, n, 2), np.int64))
        self.v[:] = v[0]
        self.s_out.send(out_s[0, 0].astype(np.int64))
        self.v_out.send(out_v[0, 0])


def run_gt_lava(q: np.ndarray, steps: int, bias: np.ndarray | float = 0.0, inputs: np.ndarray | None = None,
                weights: np.ndarray | None = None, **neuron_kwargs) -> dict[str, np.ndarray]:
    """Build and run ``[RingBuffer(inputs) -> Dense(weights) ->] GTNeurons -> 2 x Extractor`` for ``steps``.

    ``inputs`` ``(steps, m)`` graded values, ``weights`` ``(n, m)``. Returns ``{"spikes", "potentials"}``,
    each ``(steps, n)``, read through Extractors (whole vectors per step) in chunks of the buffer size.
    """
    q = np.asarray(q, dtype=np.float64)
    n = q.shape[0]
    if steps < 1:
        raise ValueError(f"run_gt_lava: steps must be >= 1, got {steps}")
    neurons = GTNeurons(q=q, bias=bias, **neuron_kwargs)
    if inputs is not None:
        inputs = np.asarray(inputs, dtype=np.float64)
        if weights is None or inputs.ndim != 2 or np.shape(weights) != (n, inputs.shape[1]):
            raise ValueError(f"run_gt_lava: inputs must be (steps, m) with weights (n={n}, m), got inputs "
                             f"{inputs.shape} and weights {None if weights is None else np.shape(weights)}")
        source = RingBuffer(data=inputs.T.copy())
        dense = Dense(weights=np.asarray(weights, dtype=np.float64), num_message_bits=24)
        source.s_out.connect(dense.s_in)
        dense.a_out.connect(neurons.a_in)
    buffer = min(steps, 64)
    out_s, out_v = Extractor(shape=(n,), buffer_size=buffer), Extractor(shape=(n,), buffer_size=buffer)
    neurons.s_out.connect(out_s.in_port)
    neurons.v_out.connect(out_v.in_port)
    cfg = Loihi2SimCfg(select_tag="floating_pt", exception_proc_model_map={Extractor: PyLoihiExtractorModel})
    spikes, potentials = [], []
    try:
        done = 0
        while done < steps:
            chunk = min(buffer, steps - done)
            neurons.run(condition=RunSteps(num_steps=chunk), run_cfg=cfg)
            for _ in range(chunk):
                spikes.append(np.array(out_s.receive(), dtype=np.float64))
                potentials.append(np.array(out_v.receive(), dtype=np.float64))
            done += chunk
    finally:
        neurons.stop()
    return {"spikes": np.stack(spikes), "potentials": np.stack(potentials)}


def torch_reference(q: np.ndarray, steps: int, bias: np.ndarray | float = 0.0, inputs: np.ndarray | None = None,
                    weights: np.ndarray | None = None, lam: float = 20.0, vc: float = 1.0, i_psi: float = 3.0,
                    a: float = 0.5, v0: float = -0.1) -> dict[str, np.ndarray]:
    """The torch model (float64, constant modulation) on the same network with Lava's input alignment."""
    q_t = torch.as_tensor(np.asarray(q, dtype=np.float64))
    n = q_t.shape[0]
    b = torch.as_tensor(np.broadcast_to(np.asarray(bias, dtype=np.float64), (n,)).copy()).expand(steps, 1, n).clone()
    if inputs is not None:
        current = torch.as_tensor(np.asarray(inputs, dtype=np.float64)) @ torch.as_tensor(np.asarray(weights, dtype=np.float64)).T
        b[1:, 0] += current[:-1]
    p = GTParameters(q=q_t, lam=lam, vc=vc, i_psi=i_psi, modulation=Modulation("constant", a=a))
    spikes, potentials, _ = run_gt(b, p, v0=v0)
    return {"spikes": spikes[:, 0].numpy(), "potentials": potentials[:, 0].numpy()}
