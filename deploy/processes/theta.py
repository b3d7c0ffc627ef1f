"""Theta neurons as a custom Lava process (lava-nc 0.10, CPU, floating point), and a runner for a feed-forward theta
network given as a graph (``Input -> Affine -> Theta -> Affine -> Theta ... -> Output``, e.g.
``models/theta_network.py``'s ``to_graph``).

``ThetaNeurons`` holds the phases ``phi`` of ``n`` neurons; ``PyThetaNeuronsModelFloat`` runs one step of
``spikes.graph.theta.theta_timed_step`` per Lava step: free flow to the arrival time of the step's inputs, the volley
``H(phi, A)``, free flow to the step's end; a spike when the phase reaches ``Theta`` (then it restarts from
``phi - Theta``), sent as the graded value ``p = 1 + (its time within the step) / dt``. Every layer is fed by two
``Dense`` processes with the same weights from the layer below (or the ``RingBuffer`` of input spikes, sent the same
way): one with binary messages, which delivers ``A = sum_i w_i`` over the spikes, one with graded messages, which
delivers ``P = sum_i w_i p_i``; the arrival time is ``(P / A - 1) dt``. So spike times are not rounded to the grid
(exact while a neuron gets one spike or one simultaneous volley per step).

Timing. A ``Dense`` delivers at Lava step ``n`` what it received at ``n - 1``, so layer ``l`` (``l`` hops from the
``RingBuffer``) sees grid step ``g`` at Lava step ``g + l``: it starts at ``onset = l`` (sending nothing before) and
the output layer's spike at Lava step ``n`` belongs to grid step ``n - L``. Several samples run back to back
(``sample_steps`` grid steps each; at the start of each the phases return to ``phi0``) and side by side
(``copies``: block-diagonal weights ``kron(I, W)``), in one Lava run. A spike with payload ``p`` in grid step ``k``
of a sample is at time ``(k + p - 1) dt``.

On a chip this would need theta microcode (a phase register and the transfer function ``H`` as a lookup table)
through Intel's lava-loihi; here it runs in Lava's floating-point simulation.
"""
from __future__ import annotations

import math

import numpy as np

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
from lava.proc.io.source import RingBuffer
from lava.proc.monitor.process import Monitor

from spikes.graph import Affine, Graph, Output
from spikes.graph.theta import Theta, theta_timed_step
from spikes.neurons.theta import ThetaParameters


class ThetaNeurons(AbstractProcess):
    """``n`` theta neurons: ``tau``, ``i0``, initial phases ``phi0`` (scalar or (n,)), grid step ``dt``; ``onset`` the
    Lava step of its first grid step (its distance from the input in Dense hops), ``sample_steps`` the grid steps of
    one sample (0: one sample for the whole run)."""

    def __init__(self, *, n: int, tau: float, i0: float, phi0: np.ndarray | float, dt: float, onset: int = 1,
                 sample_steps: int = 0, name: str | None = None) -> None:
        params = ThetaParameters(tau, i0)                       # validates tau and i0
        if not 0 < dt < params.period / 2:
            raise ValueError(f"ThetaNeurons: dt must be in (0, Theta/2 = {params.period / 2:.4g}), got {dt}")
        if onset < 0 or sample_steps < 0:
            raise ValueError(f"ThetaNeurons: onset and sample_steps must be >= 0, got {onset}, {sample_steps}")
        shape = (int(n),)
        super().__init__(shape=shape, name=name)
        phi0 = np.broadcast_to(np.asarray(phi0, dtype=np.float64), shape).copy()
        self.a_in = InPort(shape=shape)                  # sum of the weights of the spikes arriving
        self.p_in = InPort(shape=shape)                  # the same weights times the spikes' payloads
        self.s_out = OutPort(shape=shape)
        self.phi0 = Var(shape=shape, init=phi0)
        self.phi = Var(shape=shape, init=phi0.copy())
        self.constants = Var(shape=(3,), init=np.array([tau, i0, dt], dtype=np.float64))
        self.timing = Var(shape=(2,), init=np.array([onset, sample_steps]))


@implements(proc=ThetaNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyThetaNeuronsModelFloat(PyLoihiProcessModel):
    """One step per Lava step (``spikes.graph.theta.theta_timed_step``, float64)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    p_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    phi0: np.ndarray = LavaPyType(np.ndarray, np.float64)
    phi: np.ndarray = LavaPyType(np.ndarray, np.float64)
    constants: np.ndarray = LavaPyType(np.ndarray, np.float64)
    timing: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        a_in = np.asarray(self.a_in.recv(), dtype=np.float64)
        p_in = np.asarray(self.p_in.recv(), dtype=np.float64)
        onset, sample_steps = int(self.timing[0]), int(self.timing[1])
        g = self.time_step - 1 - onset                      # this population's grid step
        if g < 0:
            self.s_out.send(np.zeros(self.phi.shape))
            return
        if sample_steps and g % sample_steps == 0:
            self.phi[:] = self.phi0
        tau, i0, dt = self.constants
        s, phi = theta_timed_step(self.phi, a_in, p_in, ThetaParameters(float(tau), float(i0)), float(dt))
        self.phi[:] = phi
        self.s_out.send(s)


def theta_layers(graph: Graph) -> list[tuple[str, np.ndarray, Theta]]:
    """``[(name, W, Theta node), ...]`` of a feed-forward theta graph, input to output; anything else is refused
    naming the node."""
    inputs = graph.inputs
    if len(inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"run_theta_lava: the graph needs one Input and one Output, got {inputs} and {graph.outputs}")
    layers, node = [], inputs[0]
    while True:
        succ = graph.successors(node)
        if len(succ) != 1:
            raise ValueError(f"run_theta_lava: node {node!r} must feed exactly one node (a feed-forward chain), got "
                             f"{succ}")
        nxt = succ[0]
        if isinstance(graph.nodes[nxt], Output):
            break
        w_node = graph.nodes[nxt]
        if not isinstance(w_node, Affine) or w_node.bias is not None and np.any(w_node.bias):
            raise ValueError(f"run_theta_lava: node {nxt!r} must be an Affine without bias, got "
                             f"{type(w_node).__name__}")
        after = graph.successors(nxt)
        pop = after[0] if len(after) == 1 else None
        if pop is None or not isinstance(graph.nodes[pop], Theta):
            raise ValueError(f"run_theta_lava: {nxt!r} must feed a Theta population, got {pop!r}")
        layers.append((pop, np.asarray(w_node.weight, dtype=np.float64), graph.nodes[pop]))
        node = pop
    if not layers:
        raise ValueError("run_theta_lava: the graph has no Theta population")
    dts = {round(t.dt, 12) for _, _, t in layers}
    if len(dts) != 1:
        raise ValueError(f"run_theta_lava: every Theta population needs the same dt, got {sorted(dts)}")
    return layers


def run_theta_lava(graph: Graph, inputs: np.ndarray, copies: int = 8) -> np.ndarray:
    """Run the theta graph in Lava on timed grid inputs ``(steps, B, D)`` (per grid step ``k`` the payload
    ``1 + (t - k dt) / dt`` of an input spike at ``t``, else 0: the model's ``grid_inputs``); returns the output
    layer's first spike times ``(B, K)`` (``inf`` where the neuron stays silent).

    The ``B`` samples are split into ``copies`` side-by-side groups that each run their samples back to back (module
    docstring); one Lava run of ``ceil(B / copies) steps + L`` steps.
    """
    layers = theta_layers(graph)
    inputs = np.asarray(inputs, dtype=np.float64)
    steps, batch, d = inputs.shape
    if d != layers[0][1].shape[1]:
        raise ValueError(f"run_theta_lava: inputs have {d} channels, the first Affine takes {layers[0][1].shape[1]}")
    copies = max(1, min(int(copies), batch))
    per_copy = math.ceil(batch / copies)
    n_layers = len(layers)
    total = per_copy * steps + n_layers
    # ring-buffer data (copies * D, total): copy c's j-th sample (sample c * per_copy + j) at grid steps j * steps ...
    data = np.zeros((copies * d, total))
    for c in range(copies):
        for j in range(per_copy):
            b = c * per_copy + j
            if b < batch:
                data[c * d:(c + 1) * d, j * steps:(j + 1) * steps] = inputs[:, b, :].T
    source = RingBuffer(data=data)
    prev = source.s_out
    pops = []
    for i, (name, w, node) in enumerate(layers, start=1):
        blocks = np.kron(np.eye(copies), w)
        events, timed = Dense(weights=blocks, num_message_bits=0), Dense(weights=blocks, num_message_bits=24)
        pop = ThetaNeurons(n=copies * w.shape[0], tau=node.tau, i0=node.i0, phi0=np.tile(node.phi0_vector(), copies),
                           dt=node.dt, onset=i, sample_steps=steps, name=name)
        prev.connect(events.s_in)
        prev.connect(timed.s_in)
        events.a_out.connect(pop.a_in)
        timed.a_out.connect(pop.p_in)
        pops.append(pop)
        prev = pop.s_out
    monitor = Monitor()
    monitor.probe(pops[-1].s_out, total)
    try:
        pops[-1].run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        spikes = np.asarray(monitor.get_data()[pops[-1].name]["s_out"])       # (total, copies * K)
    finally:
        pops[-1].stop()
    k_out = layers[-1][1].shape[0]
    dt = layers[-1][2].dt
    first = np.full((batch, k_out), np.inf)
    grid = spikes[n_layers:n_layers + per_copy * steps]                        # Lava step n -> grid step n - L
    for c in range(copies):
        block = grid[:, c * k_out:(c + 1) * k_out].reshape(per_copy, steps, k_out)
        for j in range(per_copy):
            b = c * per_copy + j
            if b >= batch:
                continue
            payload = block[j]
            fired = payload > 0
            has = fired.any(0)
            k = fired[:, has].argmax(0)
            first[b, has] = (k + payload[k, np.nonzero(has)[0]] - 1.0) * dt
    return first


def graph_first_spike_times(graph: Graph, inputs: np.ndarray) -> np.ndarray:
    """First output spike times of the graph's grid reference (``Graph.forward``: inputs rounded to the middle of their
    step, spikes at ``(k + 1/2) dt``) on the same inputs, to compare with the timed Lava run."""
    import torch

    layers = theta_layers(graph)
    spikes_in = torch.as_tensor((np.asarray(inputs) > 0).astype(np.float64))
    out = graph.forward({graph.inputs[0]: spikes_in})[layers[-1][0]]
    fired = out.numpy() > 0                                                    # (steps, B, K)
    dt = layers[-1][2].dt
    first = np.full(fired.shape[1:], np.inf)
    has = fired.any(0)
    first[has] = (fired.argmax(0)[has] + 0.5) * dt
    return first
