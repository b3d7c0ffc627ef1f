"""``EpropNeuron``: e-prop's LIF/ALIF neurons as a custom Lava process (lava-nc 0.10, CPU).

Lava's LIF cannot express e-prop's neuron (zero reset only, no adaptive threshold, no refractory period;
Lava's ATRLIF is a different model). Per step ``t`` (0-based) this process receives ``a_in`` (the sum of
its projections: input and recurrent Dense), updates ``v`` (membrane), ``a`` (adaptation trace), ``r``
(refractory counter) and ``z`` (its spikes of the previous step) and sends the new spikes on ``s_out``::

    fixed point:    i = wrap24(a_in << 6)
                    v = clip(trunc(v (4096 - dv) / 4096) + i - z (vth << 6) + [t >= onset] (bias_mant << bias_exp))
                    a = min(trunc(a (4096 - da) / 4096) + (z << a_frac), 2**23 - 1)
                    z = v > (vth << 6) + ((beta_mant a) >> beta_shift)  and  r == 0
    floating point: v = v (1 - dv) + a_in - vth z + [t >= onset] bias_mant
                    a = a (1 - da) + z
                    z = v > vth + beta_mant a  and  r == 0
    both:           r = n_ref if z else max(r - 1, 0)

(``clip`` to +-(2**23 - 1); ``trunc`` rounds toward zero as Lava's LIF; ``beta_mant`` is per neuron: 0 for LIF
neurons.) The float<->fixed mapping and the quantisation are in ``spikes.deploy.populations.eprop``; both
``sim`` and these ProcessModels call ``eprop_fixed_step``/``eprop_float_step`` (``spikes.deploy.steps``),
so ``sim`` is bit-exact with ``lava-fixed`` by construction. Running on a chip would need this neuron as microcode
through Intel's lava-loihi.
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

from spikes.deploy.steps import eprop_fixed_step, eprop_float_step


class EpropNeuron(AbstractProcess):
    """``shape`` e-prop neurons; ``dv``, ``da``, ``vth`` one value per population, ``beta_mant`` and ``bias_mant``
    per neuron (fixed point: integers; floating point: ``beta`` and ``bias`` in float units)."""

    def __init__(self, *, shape: tuple[int, ...], dv: float, da: float, vth: float,
                 beta_mant: np.ndarray | float = 0.0, beta_shift: int = 0, a_frac: int = 0, n_ref: int = 0,
                 bias_mant: np.ndarray | float = 0.0, bias_exp: int = 0, onset: int = 0,
                 name: str | None = None) -> None:
        super().__init__(shape=shape, name=name)
        full = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), shape).copy()  # noqa: E731
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=np.zeros(shape))
        self.a = Var(shape=shape, init=np.zeros(shape))
        self.z = Var(shape=shape, init=np.zeros(shape))
        self.r = Var(shape=shape, init=np.zeros(shape, dtype=np.int64))
        self.dv = Var(shape=(1,), init=np.array([dv], dtype=np.float64))
        self.da = Var(shape=(1,), init=np.array([da], dtype=np.float64))
        self.vth = Var(shape=(1,), init=np.array([vth], dtype=np.float64))
        self.beta_mant = Var(shape=shape, init=full(beta_mant))
        self.beta_shift = Var(shape=(1,), init=np.array([beta_shift]))
        self.a_frac = Var(shape=(1,), init=np.array([a_frac]))
        self.n_ref = Var(shape=(1,), init=np.array([n_ref]))
        self.bias_mant = Var(shape=shape, init=full(bias_mant))
        self.bias_exp = Var(shape=(1,), init=np.array([bias_exp]))
        self.onset = Var(shape=(1,), init=np.array([onset]))


@implements(proc=EpropNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyEpropNeuronFloat(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    a: np.ndarray = LavaPyType(np.ndarray, float)
    z: np.ndarray = LavaPyType(np.ndarray, float)
    r: np.ndarray = LavaPyType(np.ndarray, int)
    dv: np.ndarray = LavaPyType(np.ndarray, float)
    da: np.ndarray = LavaPyType(np.ndarray, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    beta_mant: np.ndarray = LavaPyType(np.ndarray, float)
    beta_shift: np.ndarray = LavaPyType(np.ndarray, int)
    a_frac: np.ndarray = LavaPyType(np.ndarray, int)
    n_ref: np.ndarray = LavaPyType(np.ndarray, int)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, int)
    onset: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        a_in = np.asarray(self.a_in.recv(), dtype=np.float64)
        v, a, z = (np.asarray(x, dtype=np.float64).copy() for x in (self.v, self.a, self.z))
        r = np.asarray(self.r, dtype=np.int64).copy()
        s = eprop_float_step(a_in, v, a, z, r, float(self.dv[0]), float(self.da[0]), float(self.vth[0]),
                             np.asarray(self.beta_mant, dtype=np.float64), int(self.n_ref[0]),
                             np.asarray(self.bias_mant, dtype=np.float64), self.time_step - 1, int(self.onset[0]))
        self.v[:], self.a[:], self.z[:], self.r[:] = v, a, z, r
        self.s_out.send(s.astype(np.float64))


@implements(proc=EpropNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyEpropNeuronFixed(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    a: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    z: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    r: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    dv: np.ndarray = LavaPyType(np.ndarray, int, precision=13)
    da: np.ndarray = LavaPyType(np.ndarray, int, precision=13)
    vth: np.ndarray = LavaPyType(np.ndarray, int, precision=17)
    beta_mant: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=12)
    beta_shift: np.ndarray = LavaPyType(np.ndarray, int, precision=5)
    a_frac: np.ndarray = LavaPyType(np.ndarray, int, precision=4)
    n_ref: np.ndarray = LavaPyType(np.ndarray, int, precision=8)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, int, precision=3)
    onset: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        a_in = np.asarray(self.a_in.recv()).astype(np.int64)
        v, a, z, r = (np.asarray(x).astype(np.int64) for x in (self.v, self.a, self.z, self.r))
        bias = self.bias_mant.astype(np.int64) << int(self.bias_exp[0])
        s = eprop_fixed_step(a_in, v, a, z, r, int(self.dv[0]), int(self.da[0]), int(self.vth[0]),
                             self.beta_mant.astype(np.int64), int(self.beta_shift[0]), int(self.a_frac[0]),
                             int(self.n_ref[0]), bias, self.time_step - 1, int(self.onset[0]))
        self.v[:], self.a[:], self.z[:], self.r[:] = v, a, z, r
        self.s_out.send(s)
