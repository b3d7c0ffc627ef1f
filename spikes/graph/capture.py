"""Capture a torch model as a :class:`Graph`.

Supported: any model with a ``to_graph(input_shape) -> Graph`` method (the protocol for custom topologies
such as U-Nets with skips, or ``spikes.models.rsnn.RSNN``: e-prop neurons and a leaky readout), ``nn.Sequential`` (nested) of ``TimeDistributed``-wrapped or bare
``nn.Linear``/``EventLinear``/``nn.Conv2d``/``nn.AvgPool2d``/``nn.Flatten``/``nn.Upsample(nearest)``,
``spikes.neurons`` populations (PLIF's input gain becomes a ``Scale`` node), ``RecurrentLIF`` (input
``Affine`` -> ``Neurons`` with a recurrent ``Affine`` loop), ``nn.Identity``/``nn.Dropout`` (skipped).
Anything else raises naming the module. Models made of such parts in a fixed order (e.g. the classifiers of
``spikes.models``) implement ``to_graph`` with :func:`capture_sequence`.
"""
from __future__ import annotations

import math

from torch import nn

from spikes.layers import RecurrentLIF, TimeDistributed
from spikes.neurons import PLIF, SpikingNeuron
from spikes.graph.affine import Affine
from spikes.graph.conv import Conv2d
from spikes.graph.graph import Graph
from spikes.graph.io import Input, Output
from spikes.graph.neurons import Neurons
from spikes.graph.pool import AvgPool2d
from spikes.graph.reshape import Flatten, Scale
from spikes.graph.upsample import Upsample


class _Builder:
    def __init__(self, input_shape: tuple[int, ...]):
        self.nodes: dict = {"input": Input(tuple(input_shape))}
        self.edges: list[tuple[str, str]] = []
        self.last, self.shape = "input", tuple(input_shape)
        self.counter = 0

    def add(self, prefix: str, node, src: str | None = None) -> str:
        name = f"{self.counter}_{prefix}"
        self.counter += 1
        self.nodes[name] = node
        self.edges.append((src or self.last, name))
        self.last, self.shape = name, tuple(node.output_shape)
        return name


def _module(builder: _Builder, module: nn.Module, where: str) -> None:
    b = builder
    if isinstance(module, TimeDistributed):
        return _module(b, module.module, where)
    if isinstance(module, nn.Sequential):
        for i, m in enumerate(module):
            _module(b, m, f"{where}.{i}")
        return
    if isinstance(module, (nn.Identity, nn.Dropout)):
        return
    if isinstance(module, nn.Linear):
        if b.shape != (module.in_features,):
            raise ValueError(f"{where} ({type(module).__name__}): expects ({module.in_features},), gets {b.shape}")
        b.add("affine", Affine(module.weight, module.bias))
    elif isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ValueError(f"{where} (Conv2d): only numeric zero padding can be exported, got "
                             f"padding={module.padding!r}, padding_mode={module.padding_mode!r}")
        b.add("conv", Conv2d(module.weight, b.shape, module.bias, module.stride, module.padding, module.dilation,
                             module.groups))
    elif isinstance(module, nn.AvgPool2d):
        if not module.count_include_pad or module.ceil_mode or module.divisor_override:
            raise ValueError(f"{where} (AvgPool2d): only count_include_pad=True, ceil_mode=False can be exported")
        b.add("avgpool", AvgPool2d(b.shape, module.kernel_size, module.stride, module.padding))
    elif isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise ValueError(f"{where} (Flatten): only start_dim=1, end_dim=-1 can be exported")
        b.add("flatten", Flatten(b.shape))
    elif isinstance(module, nn.Upsample):
        if module.mode != "nearest":
            raise ValueError(f"{where} (Upsample): only mode='nearest' can be exported, got {module.mode!r}")
        if module.size is not None:
            size = module.size
        else:
            sf = module.scale_factor if isinstance(module.scale_factor, tuple) else (module.scale_factor,) * 2
            size = (int(math.floor(b.shape[1] * sf[0])), int(math.floor(b.shape[2] * sf[1])))
        b.add("upsample", Upsample(b.shape, size))
    elif isinstance(module, RecurrentLIF):
        b.add("affine", Affine(module.input.weight, module.input.bias))
        pop = b.add("neurons", Neurons(b.shape, module.params))
        rec = f"{b.counter}_recurrent"
        b.counter += 1
        b.nodes[rec] = Affine(module.recurrent_weight())
        b.edges += [(pop, rec), (rec, pop)]
        b.last = pop
    elif isinstance(module, PLIF) and module.per_neuron:
        if module.decay_input:
            raise ValueError(f"{where} (PLIF): a per-neuron PLIF with decay_input has an input gain 1 - alpha per "
                             "neuron, which no graph node carries; export it with decay_input=False")
        if tuple(module.shape) != tuple(b.shape):
            raise ValueError(f"{where} (PLIF): its shape {module.shape} is not its input's {b.shape}")
        p = module.params
        per = {"alpha": module.alpha.detach().double().numpy()}
        if module.v_th is not None:
            per["v_th"] = p.v_th.detach().double().numpy()
        scalars = module._params.with_(alpha=float(per["alpha"].reshape(-1)[0]))
        b.add("neurons", Neurons(b.shape, scalars, per_neuron=per))
    elif isinstance(module, SpikingNeuron):
        if isinstance(module, PLIF):
            gain = float(module.input_gain().detach())
            if gain != 1.0:
                b.add("scale", Scale(b.shape, gain))
        b.add("neurons", Neurons(b.shape, module.params))
    else:
        raise ValueError(f"{where}: cannot export module {type(module).__name__} (supported: Linear, Conv2d, "
                         "AvgPool2d, Flatten, Upsample(nearest), spiking neurons, RecurrentLIF, Sequential)")


def capture_sequence(parts: list[tuple[str, nn.Module]], input_shape: tuple[int, ...],
                     name: str = "model") -> Graph:
    """The graph of modules applied one after the other (``(where, module)`` pairs, ``where`` names them in
    errors), for per-sample input ``input_shape``; the last one must be a spiking population."""
    b = _Builder(input_shape)
    for where, m in parts:
        _module(b, m, where)
    if not isinstance(b.nodes[b.last], Neurons):
        raise ValueError(f"{name}: the last layer must be a spiking population to export, "
                         f"got {type(b.nodes[b.last]).__name__}")
    b.nodes["output"] = Output(b.shape)
    b.edges.append((b.last, "output"))
    return Graph(b.nodes, b.edges)


def capture(model: nn.Module, input_shape: tuple[int, ...]) -> Graph:
    """The graph of ``model`` for per-sample input ``input_shape`` (no time/batch axes): its own
    ``to_graph(input_shape)`` if it has one, else the modules of ``model`` read as a sequence."""
    if hasattr(model, "to_graph"):
        graph = model.to_graph(tuple(input_shape))
        if not isinstance(graph, Graph):
            raise ValueError(f"{type(model).__name__}.to_graph must return a spikes.graph.Graph")
        return graph
    return capture_sequence([("model", model)], input_shape, type(model).__name__)
