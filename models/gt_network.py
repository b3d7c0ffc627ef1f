"""Differential growth-transform networks trained by spike-count minimisation (no backpropagation).

Gangopadhyay and Chakrabartty, Front. Neurosci. 15:715451, 2021; equations in
``spikes.neurons.growth_transform`` (neurons) and ``spikes.learning.gt_rule`` (coding and local rule).

Every layer is a differential GT population of ``N`` units (``2N`` neurons) with input ``b = [u; -u]``:

- ``network1``: one layer, ``u = [x; y]`` (features and label code);
- ``network2``: layer 1 ``u1 = x``; layer 2 ``u2 = [d1[n]; y]`` where ``d1[n] = v1+[n] - v1-[n]`` is layer
  1's differential potential at the same iteration. Labels enter layer 2 only; layer 1 learns without
  labels for ``layer1_epochs`` epochs, then is frozen.
- ``network3``: as network2, but ``u1 = [x; y]``: labels enter both layers, both layers learn throughout.

``Q0`` starts ``N(0, std^2)`` on a random symmetric mask of ``density`` (paper: 0.5); the rows and columns
of the label units use ``label_density`` (default 1: every label unit can couple to every feature; with
0.5 each label sees only half the features, which cost 10-20 points on wine in our runs).

``x`` are the features min-max scaled to [0, 1] (plus a constant 1 when ``bias_feature``), ``y`` in
{-g, +g}^M the label code (+g at the class). The paper uses g = 1; we default to ``label_gain`` 0.5, which
gave 4-8 points more on breast cancer in our runs (1 saturates the label units' residuals). Each sample runs
``iterations`` GT iterations from ``v = v0``; during training the local rule updates every learning layer's Q0 at
every iteration.
Inference runs the network once per candidate label (all in one batch) and predicts the label with the
fewest spikes over all layers. Energy = spikes per neuron per iteration of the predicting run.

Training: the one trainer (``spikes.training``) with rule ``gt`` (:class:`spikes.learning.gt_local.GTLocal`):
``run(x, codes, update=rule.update_layer)`` hands every learning layer to the rule at every iteration, the
rule owns the update equation. Deployment: :meth:`GTNetwork.to_graph` (graph below) and
:meth:`GTNetwork.graph_inputs` (its inputs per sample and candidate label).

``to_graph()`` (network2; network1 and network3 alike)::

    features (D,) -- b1: Affine(W1, c1) --> gt1: GTPotential (2 N1)      b1 = [u1; -u1],  u1 = [x; 1]
    gt1 (2 N1)    -- d2: Affine(Wd)     --> gt2: GT (2 N2)               b2 = [u2; -u2],  u2 = [d1; y]
    labels (M,)   -- y2: Affine(Wy)     --> gt2                          gt2 -> out: Output

``Q`` of each layer stays inside its population. Layer 1 outputs its potential ``v1[n]`` (its spikes are
``v1[n] > 0``) and ``Wd = [[I, -I], [0, 0], [-I, I], [0, 0]]`` forms ``[d1; 0; -d1; 0]`` with ``d1 = v1+ - v1-``;
the last layer outputs spikes. Both inputs are held constant over the iterations: ``features`` carries the
integer codes ``round(2**k x)`` (``input_bits`` k, default ``INPUT_BITS`` = 12: the fixed-point backends need
integer inputs, the exact power of two keeps the weights exact, and a GT input with 18 fraction bits resolves
``2**-12`` anyway, its ``a_in << 6``), ``W1`` the factor ``2**-k`` and ``c1`` the constant feature;
``labels`` the sign code ``2 onehot - 1`` and ``Wy`` the label gain.

Timing: in Lava every connection adds one step, so a naive deployment would feed layer 2 with ``d1[n-1]``.
Instead each GT population starts at its latency (1 for layer 1, 2 for layer 2; it holds ``v0`` and sends
zeros before) and lowering delays the label input by one more step, so with ``align=True`` every backend
reproduces this model's timing ``d1[n]`` exactly (``spikes.deploy.populations.gt``); a run needs
``iterations + latency`` steps. ``GTNetwork.run(..., lag=1)`` measures what the naive timing would cost.

scikit-learn is imported on use only (``logistic_baseline``: a heavy optional dependency).
"""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from spikes.datasets.tabular import DATASETS, Split, load_split
from spikes.graph import GT, Affine, Graph, GTPotential, Input, Output
from spikes.learning.gt_rule import differential_input, differential_q, random_coupling, split_pair
from spikes.neurons.growth_transform import GTParameters, Modulation, gt_initial_state, gt_step

__all__ = ["ARCHITECTURES", "DATASETS", "INPUT_BITS", "DifferentialGTLayer", "GTNetwork", "GTNetworkConfig",
           "LayerUpdate", "RunResult", "Split", "evaluate", "load_split", "logistic_baseline"]

ARCHITECTURES = ("network1", "network2", "network3")
INPUT_BITS = 12   # the deploy graph's feature codes round(2**12 x) (module docstring); 8 bits flipped one
                  # borderline wine test sample in floating point


@dataclass(frozen=True)
class GTNetworkConfig:
    """Hyper-parameters; defaults follow the paper (lambda 20, a 0.5, 100 iterations, Q0 ~ N(0, 0.5^2), density 0.5)."""

    architecture: str = "network2"
    iterations: int = 100
    lam: float = 20.0
    a: float = 0.5
    i_psi: float = 3.0
    vc: float = 1.0
    v0: float = -0.1
    std: float = 0.5
    density: float = 0.5
    eta: tuple[float, ...] = (1e-4, 1e-3)
    layer1_epochs: int = 5
    bias_feature: bool = True
    label_density: float = 1.0
    label_gain: float = 0.5

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"GTNetworkConfig.architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.iterations < 1:
            raise ValueError(f"GTNetworkConfig.iterations must be >= 1, got {self.iterations}")
        n_layers = 1 if self.architecture == "network1" else 2
        if not (0.0 <= self.density <= 1.0 and 0.0 <= self.label_density <= 1.0):
            raise ValueError(f"GTNetworkConfig: density and label_density must be in [0, 1], got {self.density}, "
                             f"{self.label_density}")
        if len(self.eta) != n_layers:
            raise ValueError(f"GTNetworkConfig.eta needs {n_layers} learning rate(s) for {self.architecture}, "
                             f"got {self.eta}")

    @property
    def gt_parameters(self) -> GTParameters:
        return GTParameters(lam=self.lam, vc=self.vc, i_psi=self.i_psi, modulation=Modulation("constant", a=self.a))


@dataclass
class DifferentialGTLayer:
    """One differential layer: couplings ``q0`` ``(N, N)``, fixed ``mask``, presynaptic offsets ``theta``."""

    q0: torch.Tensor
    mask: torch.Tensor
    theta: torch.Tensor
    params: GTParameters = field(repr=False)

    @classmethod
    def create(cls, n: int, n_labels: int, cfg: GTNetworkConfig, generator: torch.Generator) -> "DifferentialGTLayer":
        """Random ``Q0``; the last ``n_labels`` units (label inputs) use ``cfg.label_density`` instead."""
        q0, mask = random_coupling(n, cfg.std, cfg.density, generator)
        if n_labels:
            q_l, mask_l = random_coupling(n, cfg.std, cfg.label_density, generator)
            rows = torch.zeros(n, dtype=torch.bool)
            rows[n - n_labels:] = True
            sel = rows[:, None] | rows[None, :]
            q0, mask = torch.where(sel, q_l, q0), torch.where(sel, mask_l, mask)
        return cls(q0, mask, torch.zeros(n, dtype=q0.dtype), cfg.gt_parameters.with_(q=differential_q(q0)))

    @property
    def n_units(self) -> int:
        return self.q0.shape[0]

    def set_q0(self, q0: torch.Tensor, name: str = "layer") -> None:
        """Replace the couplings ``Q0`` (``Q`` of the parameters follows: ``[[Q0 + I, -Q0], [-Q0, Q0 + I]]``)."""
        if not isinstance(q0, torch.Tensor) or q0.shape != self.q0.shape:
            shape = tuple(q0.shape) if isinstance(q0, torch.Tensor) else type(q0).__name__
            raise ValueError(f"{name}: Q0 must be a {tuple(self.q0.shape)} tensor, got {shape}")
        self.q0 = q0.to(self.q0.dtype)
        self.params.q.copy_(differential_q(self.q0))  # in place: the parameters object is frozen


LayerUpdate = Callable[[DifferentialGTLayer, torch.Tensor, torch.Tensor, float], None]
"""``update(layer, s, v, eta)``: a learning rule's change of ``layer`` after one iteration, given its spikes ``s``
and the potentials ``v`` they were read from (both ``(B, 2N)``) and its learning rate ``eta``."""


@dataclass
class RunResult:
    """Spike counts of one run, per sample ``(B,)`` and per layer."""

    spikes: list[torch.Tensor]

    @property
    def total(self) -> torch.Tensor:
        return torch.stack(self.spikes).sum(0)


class GTNetwork:
    """A differential GT classifier (architectures in the module docstring)."""

    def __init__(self, n_features: int, n_classes: int, cfg: GTNetworkConfig = GTNetworkConfig(), seed: int = 0):
        if n_features < 1 or n_classes < 2:
            raise ValueError(f"GTNetwork: needs >= 1 feature and >= 2 classes, got {n_features} and {n_classes}")
        self.cfg = cfg
        self.n_features = n_features
        self.n_classes = n_classes
        gen = torch.Generator().manual_seed(seed)
        d = n_features + int(cfg.bias_feature)
        m = n_classes
        if cfg.architecture == "network1":
            sizes = [(d + m, m)]
        elif cfg.architecture == "network2":
            sizes = [(d, 0), (d + m, m)]
        else:
            sizes = [(d + m, m), (d + 2 * m, m)]
        self.layers = [DifferentialGTLayer.create(n, k, cfg, gen) for n, k in sizes]
        self.epochs_trained = 0

    @property
    def n_neurons(self) -> int:
        return sum(2 * layer.n_units for layer in self.layers)

    def label_codes(self, labels: torch.Tensor) -> torch.Tensor:
        """``y`` in {-g, +g}^M: +g at the class (``g = label_gain``, paper: 1)."""
        onehot = torch.nn.functional.one_hot(labels, self.n_classes).to(torch.float64)
        return self.cfg.label_gain * (2.0 * onehot - 1.0)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float64)
        if x.shape[-1] != self.n_features:
            raise ValueError(f"GTNetwork: inputs have {x.shape[-1]} features, the network expects {self.n_features}")
        if self.cfg.bias_feature:
            x = torch.cat([x, torch.ones_like(x[:, :1])], 1)
        return x

    def learning_rates(self) -> list[float]:
        """Per layer learning rate at the current epoch (0 = frozen)."""
        cfg = self.cfg
        if cfg.architecture == "network2" and self.epochs_trained >= cfg.layer1_epochs:
            return [0.0, cfg.eta[1]]
        return list(cfg.eta)

    def run(self, x: torch.Tensor, y: torch.Tensor, update: LayerUpdate | None = None, lag: int = 0) -> RunResult:
        """Run ``iterations`` GT iterations on features ``x`` ``(B, D)`` and label codes ``y`` ``(B, M)``.

        ``update``: learn while running: at every iteration each layer whose learning rate (``learning_rates()``)
        is not 0 is handed to ``update(layer, s, v, eta)`` right after its step (the rule ``gt``,
        ``spikes.learning.gt_local``, sums its change over the batch). None: no learning.
        ``lag``: layer k+1 sees layer k's differential potential of ``lag`` iterations earlier (zero before),
        what a deployment without aligned timing would compute (module docstring); 0 = the model.
        """
        cfg = self.cfg
        if int(lag) != lag or lag < 0:
            raise ValueError(f"GTNetwork.run: lag must be an int >= 0, got {lag}")
        if update is not None and not callable(update):
            raise ValueError(f"GTNetwork.run: update must be a callable (layer, s, v, eta), got "
                             f"{type(update).__name__}")
        x = self._features(x)
        y = y.to(torch.float64)
        arch = cfg.architecture
        u1 = x if arch == "network2" else torch.cat([x, y], 1)
        b1 = differential_input(u1)
        states = [gt_initial_state((x.shape[0], 2 * layer.n_units), v0=cfg.v0, dtype=torch.float64)
                  for layer in self.layers]
        counts = [torch.zeros(x.shape[0], dtype=torch.float64) for _ in self.layers]
        etas = self.learning_rates() if update is not None else [0.0] * len(self.layers)
        past: list[list[torch.Tensor]] = [[] for _ in self.layers]   # differential potentials, for lag > 0
        for _ in range(cfg.iterations):
            b = b1
            for k, layer in enumerate(self.layers):
                v = states[k].v
                s, states[k] = gt_step(b, states[k], layer.params)
                counts[k] += s.sum(1)
                if etas[k]:
                    update(layer, s, v, etas[k])
                if k + 1 < len(self.layers):
                    v_p, v_m = split_pair(v)
                    d = v_p - v_m
                    if lag:
                        past[k].append(d)
                        d = past[k].pop(0) if len(past[k]) > lag else torch.zeros_like(d)
                    b = differential_input(torch.cat([d, y], 1))
        return RunResult(counts)

    def spike_counts(self, x: torch.Tensor, batch_size: int = 64, lag: int = 0) -> torch.Tensor:
        """Total spikes ``(B, M)`` for every sample and candidate label (no learning; ``lag`` as in ``run``)."""
        out = []
        m = self.n_classes
        codes = self.label_codes(torch.arange(m))
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size]
            xr = xb.repeat_interleave(m, 0)
            yr = codes.repeat(xb.shape[0], 1)
            out.append(self.run(xr, yr, lag=lag).total.reshape(xb.shape[0], m))
        return torch.cat(out)

    def predict(self, x: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """``(labels, energy)``: label with the fewest spikes, and that run's spikes per neuron per iteration."""
        counts = self.spike_counts(x, batch_size)
        pred = counts.argmin(1)
        energy = counts.gather(1, pred[:, None])[:, 0] / (self.n_neurons * self.cfg.iterations)
        return pred, energy

    def state_dict(self) -> dict:
        return {"q0": [layer.q0.clone() for layer in self.layers], "epochs_trained": self.epochs_trained}

    def load_state_dict(self, state: dict) -> None:
        for key in ("q0", "epochs_trained"):
            if key not in state:
                raise KeyError(f"GTNetwork.load_state_dict: the state has no {key!r} (keys: {sorted(state)})")
        if len(state["q0"]) != len(self.layers):
            raise ValueError(f"GTNetwork.load_state_dict: {len(state['q0'])} Q0 matrices for {len(self.layers)} "
                             f"layers ({self.cfg.architecture})")
        for k, (layer, q0) in enumerate(zip(self.layers, state["q0"]), start=1):
            layer.set_q0(q0.clone(), f"GTNetwork.load_state_dict: layer gt{k}")
        self.epochs_trained = int(state["epochs_trained"])

    # ------------------------------------------------------------------------------------------- deployment
    def _layer_inputs(self) -> list[tuple[bool, bool]]:
        """Per layer: (features enter, labels enter); layers after the first also get the previous layer's d."""
        arch = self.cfg.architecture
        if arch == "network1":
            return [(True, True)]
        return [(True, arch == "network3"), (False, True)]

    def to_graph(self, input_shape: tuple[int, ...] | None = None, input_bits: int | None = INPUT_BITS) -> Graph:
        """The deploy graph of this network (module docstring): inputs ``features`` ``(D,)`` (the codes
        ``round(2**input_bits x)``; ``input_bits`` None: the features as floats, for float backends only) and
        ``labels`` ``(M,)``. ``input_shape`` (what ``spikes.graph.capture`` passes): None or ``(D,)``."""
        d, m = self.n_features, self.n_classes
        if input_shape is not None and tuple(input_shape) != (d,):
            raise ValueError(f"GTNetwork.to_graph: input_shape must be ({d},) (the features), got {tuple(input_shape)}")
        if input_bits is not None and (int(input_bits) != input_bits or not 1 <= input_bits <= 16):
            raise ValueError(f"GTNetwork.to_graph: input_bits must be an int in 1..16 or None, got {input_bits}")
        cfg = self.cfg
        x_gain = 1.0 if input_bits is None else 2.0**-input_bits
        nodes: dict = {"features": Input((d,)), "labels": Input((m,))}
        edges: list[tuple[str, str]] = []
        prev = None
        for k, (layer, (feat, lab)) in enumerate(zip(self.layers, self._layer_inputs()), start=1):
            n = layer.n_units
            offset = 0                                       # where the next group of units starts in u
            pop = f"gt{k}"
            if prev is not None:                              # u = [d_prev; ...]
                n_prev = self.layers[k - 2].n_units
                w = np.zeros((2 * n, 2 * n_prev))
                i = np.arange(n_prev)
                w[i, i], w[i, n_prev + i], w[n + i, i], w[n + i, n_prev + i] = 1.0, -1.0, -1.0, 1.0
                nodes[f"d{k}"] = Affine(w)
                edges += [(prev, f"d{k}"), (f"d{k}", pop)]
                offset = n_prev
            if feat:                                          # u = [x; 1; ...]
                w = np.zeros((2 * n, d))
                i = np.arange(d)
                w[offset + i, i], w[n + offset + i, i] = x_gain, -x_gain
                c = np.zeros(2 * n)
                if cfg.bias_feature:
                    c[offset + d], c[n + offset + d] = 1.0, -1.0
                nodes[f"b{k}"] = Affine(w, c)
                edges += [("features", f"b{k}"), (f"b{k}", pop)]
                offset += d + int(cfg.bias_feature)
            if lab:                                           # u = [...; y]
                w = np.zeros((2 * n, m))
                i = np.arange(m)
                w[offset + i, i], w[n + offset + i, i] = cfg.label_gain, -cfg.label_gain
                nodes[f"y{k}"] = Affine(w)
                edges += [("labels", f"y{k}"), (f"y{k}", pop)]
                offset += m
            if offset != n:
                raise ValueError(f"GTNetwork.to_graph: layer {k} has {n} units but its inputs fill {offset}")
            node_type = GT if k == len(self.layers) else GTPotential
            nodes[pop] = node_type.from_params(layer.params, 2 * n, v0=cfg.v0,
                                               name=f"GTNetwork.to_graph: layer {pop!r}")
            prev = pop
        nodes["out"] = Output(nodes[prev].shape)
        edges.append((prev, "out"))
        return Graph(nodes, edges)

    def graph_inputs(self, x: np.ndarray, steps: int, input_bits: int | None = INPUT_BITS) -> dict[str, np.ndarray]:
        """The inputs of :meth:`to_graph`: ``{"features", "labels"}`` ``(steps, B * M, ·)``, every sample once per
        candidate label (row ``b M + c``), held constant; features as the codes ``round(2**input_bits x)``,
        labels as the sign code ``2 onehot(c) - 1``."""
        x = np.asarray(x, dtype=np.float64)
        m = self.n_classes
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"GTNetwork.graph_inputs: x must be (B, {self.n_features}) features, got shape {x.shape}")
        if int(steps) != steps or steps < 1:
            raise ValueError(f"GTNetwork.graph_inputs: steps must be an int >= 1, got {steps}")
        feats = x if input_bits is None else np.round(x * 2.0**input_bits)
        feats = np.repeat(feats, m, axis=0)
        codes = np.tile(2.0 * np.eye(m) - 1.0, (x.shape[0], 1))
        return {"features": np.broadcast_to(feats, (steps, *feats.shape)).copy(),
                "labels": np.broadcast_to(codes, (steps, *codes.shape)).copy()}


# --------------------------------------------------------------------------- evaluation on scikit-learn data
def logistic_baseline(split: Split, seed: int = 0) -> float:
    """Test accuracy of scikit-learn's logistic regression trained on the same training part."""
    from sklearn.linear_model import LogisticRegression

    unset = multiprocessing.get_start_method(allow_none=True) is None
    try:
        model = LogisticRegression(max_iter=5000, random_state=seed).fit(split.x_train, split.y_train)
    finally:
        # scikit-learn's fit fixes multiprocessing's start method; importing lava afterwards in the same
        # process then fails with "context has already been set". Leave it unset as we found it.
        if unset:
            multiprocessing.set_start_method(None, force=True)
    return float(model.score(split.x_test, split.y_test))


def evaluate(net: GTNetwork, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and energy (spikes per neuron per iteration of the predicting run) on ``(x, y)``."""
    pred, energy = net.predict(torch.from_numpy(x))
    return {"accuracy": float((pred == torch.from_numpy(y)).double().mean()), "energy": float(energy.mean())}
