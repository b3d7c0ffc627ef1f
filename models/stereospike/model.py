"""StereoSpike: a spiking U-Net that regresses dense metric depth from stereo event counts.

Rancon et al., IEEE Access 2022 (arXiv 2109.13751); equations in ``/work/shared/notes/models.md`` section 1.
The network is an explicit dataflow graph of standard torch modules (``nn.Conv2d`` without bias, one-step
neurons, ``nn.Upsample(mode="nearest")``) and additive joins, so a deploy backend (Lava, NIR) can map it
node by node. ``forward`` interprets that same graph, so the graph is the model by construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from spikes.models.stereospike.export import stereo_graph
from spikes.models.stereospike.neurons import OneStepIF, make_neuron
from spikes.surrogates import Surrogate

OPS = ("conv", "neuron", "act", "upsample", "add")


@dataclass(frozen=True)
class Node:
    """One graph node: ``op`` applied to the tensors named in ``inputs``.

    ``conv``/``neuron``/``act``/``upsample`` call ``model.layers[name]`` on their single input; ``add`` sums
    its inputs element-wise (skip connections, SEW-ADD, the cumulative I-neuron readout).
    """

    name: str
    op: str
    inputs: tuple[str, ...]


@dataclass
class StereoOutput:
    """What a forward pass returns.

    ``depths``: the cumulative readouts, coarsest first: ``depths[0] = P_L``, ``depths[1] = P_L + P_{L-1}``,
    ..., ``depths[-1] = P_L + ... + P_1`` (the final depth map), each ``(B, 1, H, W)`` in metres.
    ``activations``: the output of every neuron (or ANN activation) node, by node name.
    ``penalised``: the tensors of the spike penalty: the bottleneck output and the decoder skip sums.
    """

    depths: list[torch.Tensor]
    activations: dict[str, torch.Tensor] = field(default_factory=dict)
    penalised: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def depth(self) -> torch.Tensor:
        return self.depths[-1]


def _down(size: int) -> int:
    """Output size of a 5x5, stride-2, padding-2 conv: ceil(size / 2)."""
    return (size - 1) // 2 + 1


class StereoUNet(nn.Module):
    """Shared U-Net skeleton of StereoSpike and its ANN twin; subclasses choose the unit after each conv.

    Graph, with ``C_k = base * 2**k`` channels and ``L = levels`` (paper: base 32, L 4, 2 residual blocks)::

        bottom      conv5x5 s1 in->C_0, unit                              (H, W)
        enc k       conv5x5 s2 C_{k-1}->C_k, unit        k = 1..L         (ceil(H/2^k), ...)
        res j       conv3x3-unit-conv3x3-unit, + input (SEW-ADD)   j = 1..n_res, at C_L
        dec k       nearest upsample to skip size + 4, valid conv5x5 C_k->C_{k-1}, unit   k = L..1
        skip k      dec k + (enc k-1, or bottom for k = 1)           (additive skip)
        pred k      nearest upsample skip k to (H+2, W+2), valid conv3x3 C_{k-1}->1 with bias (no unit)
        depth k     pred L (k = L), depth k+1 + pred k (k < L)      (cumulative I-neuron readout)

    Node names: ``bottom_conv, bottom_sn, enc{k}_conv, enc{k}_sn, res{j}_conv1, res{j}_sn1, res{j}_conv2,
    res{j}_sn2, res{j}`` (add), ``dec{k}_up, dec{k}_conv, dec{k}_sn, skip{k}`` (add), ``pred{k}_up,
    pred{k}_conv, depth{k}`` (add for k < L). ``graph()`` lists them in execution order; ``layers`` holds
    the modules by node name.
    """

    unit_op = "neuron"

    def __init__(self, base: int = 32, levels: int = 4, n_res: int = 2, in_channels: int = 4,
                 input_size: tuple[int, int] = (260, 346), init_depth: float = 0.0):
        super().__init__()
        for name, value, low in (("base", base, 1), ("levels", levels, 1), ("n_res", n_res, 0),
                                 ("in_channels", in_channels, 1)):
            if int(value) != value or value < low:
                raise ValueError(f"{type(self).__name__} {name} must be an integer >= {low}, got {value}")
        h, w = (int(s) for s in input_size)
        if min(h, w) < 2 ** levels:
            raise ValueError(f"{type(self).__name__} input_size {input_size} is too small for {levels} levels "
                             f"(need at least {2 ** levels} pixels per side)")
        self.base, self.levels, self.n_res, self.in_channels = base, levels, n_res, in_channels
        self.input_size = (h, w)
        ch = [base * 2 ** k for k in range(levels + 1)]
        sizes = [(h, w)]
        for _ in range(levels):
            sizes.append((_down(sizes[-1][0]), _down(sizes[-1][1])))
        self.sizes = sizes

        layers: dict[str, nn.Module] = {}
        nodes: list[Node] = []

        def conv_unit(prefix: str, src: str, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0,
                      conv: str = "conv", unit: str = "sn") -> str:
            layers[f"{prefix}_{conv}"] = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False)
            nodes.append(Node(f"{prefix}_{conv}", "conv", (src,)))
            layers[f"{prefix}_{unit}"] = self.make_unit(cout)
            nodes.append(Node(f"{prefix}_{unit}", self.unit_op, (f"{prefix}_{conv}",)))
            return f"{prefix}_{unit}"

        src = conv_unit("bottom", "input", in_channels, ch[0], 5, pad=2)
        skips = [src]
        for k in range(1, levels + 1):
            src = conv_unit(f"enc{k}", src, ch[k - 1], ch[k], 5, stride=2, pad=2)
            skips.append(src)
        for j in range(1, n_res + 1):
            a = conv_unit(f"res{j}", src, ch[levels], ch[levels], 3, pad=1, conv="conv1", unit="sn1")
            b = conv_unit(f"res{j}", a, ch[levels], ch[levels], 3, pad=1, conv="conv2", unit="sn2")
            nodes.append(Node(f"res{j}", "add", (b, src)))
            src = f"res{j}"
        self.bottleneck_name = src
        self.skip_names: list[str] = []
        depth = None
        for k in range(levels, 0, -1):
            th, tw = sizes[k - 1]
            layers[f"dec{k}_up"] = nn.Upsample(size=(th + 4, tw + 4), mode="nearest")
            nodes.append(Node(f"dec{k}_up", "upsample", (src,)))
            d = conv_unit(f"dec{k}", f"dec{k}_up", ch[k], ch[k - 1], 5)
            nodes.append(Node(f"skip{k}", "add", (d, skips[k - 1])))
            src = f"skip{k}"
            self.skip_names.append(src)
            layers[f"pred{k}_up"] = nn.Upsample(size=(h + 2, w + 2), mode="nearest")
            nodes.append(Node(f"pred{k}_up", "upsample", (src,)))
            layers[f"pred{k}_conv"] = nn.Conv2d(ch[k - 1], 1, 3, bias=True)
            nodes.append(Node(f"pred{k}_conv", "conv", (f"pred{k}_up",)))
            if depth is None:
                nodes.append(Node(f"depth{k}", "add", (f"pred{k}_conv",)))
            else:
                nodes.append(Node(f"depth{k}", "add", (depth, f"pred{k}_conv")))
            depth = f"depth{k}"
        self.layers = nn.ModuleDict(layers)
        self._nodes = tuple(nodes)
        self.depth_names = [f"depth{k}" for k in range(levels, 0, -1)]
        with torch.no_grad():
            for k in range(1, levels + 1):
                self.layers[f"pred{k}_conv"].bias.zero_()
            self.layers[f"pred{levels}_conv"].bias.fill_(float(init_depth))

    def make_unit(self, channels: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def graph(self) -> tuple[Node, ...]:
        """The nodes in execution order (the first input is named ``input``)."""
        return self._nodes

    def to_graph(self, input_shape: tuple[int, ...]):
        """The deploy graph (``spikes.graph.Graph``) of the spiking model; the ANN twin is refused
        with a ValueError. Mapping in :mod:`spikes.models.stereospike.export`."""
        return stereo_graph(self, input_shape)

    @property
    def unit_names(self) -> list[str]:
        """Names of the neuron (or activation) nodes, input to output."""
        return [n.name for n in self._nodes if n.op == self.unit_op]

    def forward(self, x: torch.Tensor) -> StereoOutput:
        if x.dim() != 4 or x.shape[1] != self.in_channels or tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f"{type(self).__name__} expects input (B, {self.in_channels}, {self.input_size[0]}, "
                             f"{self.input_size[1]}), got {tuple(x.shape)}")
        values: dict[str, torch.Tensor] = {"input": x}
        for node in self._nodes:
            if node.op == "add":
                out = values[node.inputs[0]]
                for name in node.inputs[1:]:
                    out = out + values[name]
            else:
                out = self.layers[node.name](values[node.inputs[0]])
            values[node.name] = out
        return StereoOutput(
            depths=[values[n] for n in self.depth_names],
            activations={n: values[n] for n in self.unit_names},
            penalised={n: values[n] for n in [self.bottleneck_name, *self.skip_names]},
        )


class StereoSpike(StereoUNet):
    """The spiking StereoSpike U-Net (graph in :class:`StereoUNet`): every unit is a stateless one-step
    neuron ``S = H(g W*S_in - 1)`` ('if': g = 1; 'plif': learnable g), ATan surrogate (slope 2).

    No BatchNorm, no bias in the spiking convs, no concatenation: only convs, nearest upsampling and
    additive joins. Skip sums and SEW-ADD outputs are small integer counts, not binary.
    """

    unit_op = "neuron"

    def __init__(self, base: int = 32, levels: int = 4, n_res: int = 2, in_channels: int = 4,
                 input_size: tuple[int, int] = (260, 346), neuron: str = "if",
                 surrogate: Surrogate | None = None, init_depth: float = 0.0):
        self.neuron_kind = neuron
        self.surrogate = surrogate or Surrogate("atan", 2.0)
        make_neuron(neuron, self.surrogate)  # validates the kind before building
        super().__init__(base, levels, n_res, in_channels, input_size, init_depth)

    def make_unit(self, channels: int) -> OneStepIF:
        return make_neuron(self.neuron_kind, self.surrogate)

    @classmethod
    def paper(cls, neuron: str = "if") -> "StereoSpike":
        """The published network: 346x260 input, base 32, 4 levels, 2 SEW blocks (about 18.2 M parameters)."""
        return cls(base=32, levels=4, n_res=2, in_channels=4, input_size=(260, 346), neuron=neuron)
