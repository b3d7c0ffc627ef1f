"""``LeakyIntegrator``: a non-spiking readout population as a custom Lava process (lava-nc 0.10, CPU).

Lava's LIF cannot serve as a readout: it has no output for its potential, its ``dv`` stops at 4095 (so
it cannot forget in one step) and its bias acts from the first step. This process sends its potential
``v`` every step on ``v_out`` (graded) and switches its bias on at step ``onset`` (the population's
latency, so the readout starts exactly when the torch model's does). Per step ``t`` (0-based)::

    fixed point:    v = sign(v (4096 - dv)) (|v (4096 - dv)| >> 12) + (a_in << 6) + [t >= onset] (bias_mant << bias_exp)
                    v = clip(v, -(2**23 - 1), 2**23 - 1)
    floating point: v = v (1 - dv) + a_in + [t >= onset] bias_mant

``dv`` is in 0..4096 (4096: no memory). ``spikes.deploy.populations.integrator`` runs the same equations in
``sim`` (one function, ``spikes.deploy.steps.integrator_fixed_step``, serves both). Running on a chip would need
this neuron as microcode through Intel's lava-loihi.
"""
from __future__ import annotations

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from spikes.deploy.steps import integrator_fixed_step


class LeakyIntegrator(AbstractProcess):
    """``shape`` integrators; ``dv`` one decay per population, ``bias_mant`` per neuron."""

    def __init__(self, *, shape: tuple[int, ...], dv: float, bias_mant: np.ndarray | float = 0.0,
                 bias_exp: int = 0, onset: int = 0, name: str | None = None) -> None:
        super().__init__(shape=shape, name=name)
        self.a_in = InPort(shape=shape)
        self.v_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=np.zeros(shape))
        self.dv = Var(shape=(1,), init=np.array([dv], dtype=np.float64))
        self.bias_mant = Var(shape=shape, init=np.broadcast_to(np.asarray(bias_mant, dtype=np.float64), shape).copy())
        self.bias_exp = Var(shape=(1,), init=np.array([bias_exp]))
        self.onset = Var(shape=(1,), init=np.array([onset]))


@implements(proc=LeakyIntegrator, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLeakyIntegratorFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, int)
    onset: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        a = self.a_in.recv()
        self.v[:] = self.v * (1.0 - self.dv[0]) + a
        if self.time_step - 1 >= self.onset[0]:
            self.v[:] += self.bias_mant
        self.v_out.send(self.v)


@implements(proc=LeakyIntegrator, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyLeakyIntegratorFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    dv: np.ndarray = LavaPyType(np.ndarray, int, precision=13)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, int, precision=3)
    onset: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        a = np.asarray(self.a_in.recv()).astype(np.int64)
        v = self.v.astype(np.int64)
        bias = self.bias_mant.astype(np.int64) << int(self.bias_exp[0])
        integrator_fixed_step(v, a, int(self.dv[0]), bias, self.time_step - 1, int(self.onset[0]))
        self.v[:] = v
        self.v_out.send(v)
