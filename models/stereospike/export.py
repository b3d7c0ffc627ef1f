"""StereoSpike as a deploy graph (``spikes.graph``): what :meth:`StereoUNet.to_graph` returns.

One graph node per model node, named after it (``bottom_conv``, ``bottom_sn``, ``dec1_up``, ...)::

    conv (no bias)      -> Conv2d
    one-step IF unit    -> Neurons(alpha = 0, alpha_syn = 0, v_th, reset zero): S[t] = H(x[t] - v_th), no
                           memory from one step to the next (the model is stateless)
    one-step PLIF unit  -> Scale(g) -> Neurons(...)     g = k sigmoid(w), PLIF's input gain (as ``capture``)
    nearest upsample    -> Upsample
    add (skip, SEW-ADD) -> no node: the addends' edges go straight into the consumer (the IR sums edges)
    readout             -> pred_k convs without bias -> one Integrator ``depth`` (alpha = 0, bias = sum_k b_k)
                           -> Output: depth = sum_k pred_k = depth_1, the model's final depth map (metres)

The readout needs no host-side transform: the model regresses linear depth in metres. With torch timing
(``Graph.forward``) one frame at step 0 gives every unit's spikes and the depth at step 0; on Lava's
timing (``spikes.deploy.network``) population P answers at step ``latency(P)`` and the depth at the
integrator's latency, its bias switching on at that step. Fixed point keeps ``v >> 12`` of a sub-threshold
potential for one more step (Lava's LIF ``dv`` stops at 4095 of 4096): harmless for one frame followed by
zero steps (each population gets input at one step only), a ``1/4096`` leak if frames were streamed one per
step.
"""
from __future__ import annotations

import torch

from spikes.graph import Conv2d, Graph, Input, Integrator, Neurons, Output, Scale, Upsample
from spikes.models.stereospike.neurons import OneStepIF
from spikes.neurons.dynamics import NeuronParameters


def stereo_graph(model, input_shape: tuple[int, ...]):
    """The :class:`spikes.graph.Graph` of a spiking ``StereoUNet`` for per-frame ``input_shape``."""
    name = type(model).__name__
    if model.unit_op != "neuron":
        raise ValueError(f"{name}: the ANN twin (BatchNorm + activation units) has no spiking equivalent and "
                         "cannot be deployed; export the spiking StereoSpike instead")
    expected = (model.in_channels, *model.input_size)
    if tuple(input_shape) != expected:
        raise ValueError(f"{name}.to_graph: input_shape must be {expected} (channels, H, W), got {tuple(input_shape)}")
    nodes: dict = {"input": Input(expected)}
    edges: list[tuple[str, str]] = []
    sources: dict[str, list[str]] = {"input": ["input"]}   # model tensor -> graph nodes whose sum it is
    shapes: dict[str, tuple[int, ...]] = {"input": expected}
    preds: list[str] = []
    bias = 0.0

    def connect(tensor: str, target: str) -> None:
        edges.extend((s, target) for s in sources[tensor])

    for node in model.graph():
        layer = model.layers[node.name] if node.name in model.layers else None
        src = node.inputs[0]
        if node.op == "add":     # skips, SEW-ADD and the cumulative depths: a sum of edges, no node
            sources[node.name] = [n for t in node.inputs for n in sources[t]]
            shapes[node.name] = shapes[src]
            continue
        if node.op == "conv":
            is_pred = node.name.startswith("pred")
            if layer.bias is not None and not is_pred:
                raise ValueError(f"{name}: layer {node.name!r} has a bias; StereoSpike's spiking convs have none")
            if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
                raise ValueError(f"{name}: layer {node.name!r} needs numeric zero padding to export")
            nodes[node.name] = Conv2d(layer.weight, shapes[src], None, layer.stride, layer.padding, layer.dilation,
                                      layer.groups)
            if is_pred:
                preds.append(node.name)
                if layer.bias is not None:
                    bias += float(layer.bias.detach().double().sum())
        elif node.op == "upsample":
            if layer.mode != "nearest" or layer.size is None:
                raise ValueError(f"{name}: layer {node.name!r} must be a nearest upsample to a fixed size")
            nodes[node.name] = Upsample(shapes[src], layer.size)
        elif node.op == "neuron":
            if not isinstance(layer, OneStepIF):
                raise ValueError(f"{name}: unit {node.name!r} ({type(layer).__name__}) is not a one-step IF/PLIF "
                                 "neuron")
            gain = layer.gain()
            gain = float(gain.detach()) if isinstance(gain, torch.Tensor) else float(gain)
            if gain != 1.0:
                scale = f"{node.name}_gain"
                nodes[scale] = Scale(shapes[src], gain)
                connect(src, scale)
                sources[scale], shapes[scale] = [scale], shapes[src]
                src = scale
            nodes[node.name] = Neurons(shapes[src], NeuronParameters(alpha=0.0, alpha_syn=0.0, v_th=layer.v_th,
                                                                     reset="zero", surrogate=layer.surrogate))
        else:
            raise ValueError(f"{name}: node {node.name!r} has op {node.op!r}, which cannot be exported")
        connect(src, node.name)
        sources[node.name] = [node.name]
        shapes[node.name] = tuple(nodes[node.name].output_shape)
    final = model.depth_names[-1]
    if sorted(sources[final]) != sorted(preds):
        raise ValueError(f"{name}: the readout {final!r} must be the sum of the pred convs {preds}")
    out_shape = shapes[preds[0]]
    nodes["depth"] = Integrator(out_shape, alpha=0.0, bias=bias)
    edges.extend((p, "depth") for p in preds)
    nodes["output"] = Output(out_shape)
    edges.append(("depth", "output"))
    return Graph(nodes, edges)
