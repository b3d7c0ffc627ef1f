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
gave 4-8 points more on breast cancer in our runs (1 saturates the label units' residuals). Each sample runs ``iterations`` GT iterations from
``v = v0``; during training the local rule updates every learning layer's Q0 at every iteration.
Inference runs the network once per candidate label (all in one batch) and predicts the label with the
fewest spikes over all layers. Energy = spikes per neuron per iteration of the predicting run.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from spikes.learning.gt_rule import differential_input, differential_q, gt_rule_update, random_coupling, split_pair
from spikes.neurons.growth_transform import GTParameters, GTState, Modulation, gt_initial_state, gt_step

ARCHITECTURES = ("network1", "network2", "network3")


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
            raise ValueError(f"GTNetworkConfig: density and label_density must be in [0, 1], got {self.density}, {self.label_density}")
        if len(self.eta) != n_layers:
            raise ValueError(f"GTNetworkConfig.eta needs {n_layers} learning rate(s) for {self.architecture}, got {self.eta}")

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

    def learn(self, s: torch.Tensor, v: torch.Tensor, eta: float) -> None:
        self.q0 = gt_rule_update(self.q0, s, v, eta, self.mask, self.theta)
        self.params.q.copy_(differential_q(self.q0))  # in place: the parameters object is frozen


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

    def run(self, x: torch.Tensor, y: torch.Tensor, learn: bool = False, lag: int = 0) -> RunResult:
        """Run ``iterations`` GT iterations on features ``x`` ``(B, D)`` and label codes ``y`` ``(B, M)``.

        With ``learn`` the local rule updates the learning layers at every iteration (summed over the batch).
        ``lag``: layer k+1 sees layer k's differential potential of ``lag`` iterations earlier (zero before),
        what a deployment without aligned timing would compute (``spikes.deploy.gt_network``); 0 = the model.
        """
        cfg = self.cfg
        if int(lag) != lag or lag < 0:
            raise ValueError(f"GTNetwork.run: lag must be an int >= 0, got {lag}")
        x = self._features(x)
        y = y.to(torch.float64)
        arch = cfg.architecture
        u1 = x if arch == "network2" else torch.cat([x, y], 1)
        b1 = differential_input(u1)
        states = [gt_initial_state((x.shape[0], 2 * layer.n_units), v0=cfg.v0, dtype=torch.float64) for layer in self.layers]
        counts = [torch.zeros(x.shape[0], dtype=torch.float64) for _ in self.layers]
        etas = self.learning_rates() if learn else [0.0] * len(self.layers)
        past: list[list[torch.Tensor]] = [[] for _ in self.layers]   # differential potentials, for lag > 0
        for _ in range(cfg.iterations):
            b = b1
            for k, layer in enumerate(self.layers):
                v = states[k].v
                s, states[k] = gt_step(b, states[k], layer.params)
                counts[k] += s.sum(1)
                if etas[k]:
                    layer.learn(s, v, etas[k])
                if k + 1 < len(self.layers):
                    v_p, v_m = split_pair(v)
                    d = v_p - v_m
                    if lag:
                        past[k].append(d)
                        d = past[k].pop(0) if len(past[k]) > lag else torch.zeros_like(d)
                    b = differential_input(torch.cat([d, y], 1))
        return RunResult(counts)

    def train_epoch(self, x: torch.Tensor, labels: torch.Tensor, batch_size: int = 8,
                    generator: torch.Generator | None = None, progress=None) -> float:
        """One epoch of local learning (shuffled batches, true labels); returns the total spike count."""
        order = torch.randperm(x.shape[0], generator=generator)
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start:start + batch_size]
            total += float(self.run(x[idx], self.label_codes(labels[idx]), learn=True).total.sum())
            if progress is not None:
                progress.update(len(idx))
        self.epochs_trained += 1
        return total

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
        for layer, q0 in zip(self.layers, state["q0"]):
            layer.q0 = q0.clone()
            layer.params.q.copy_(differential_q(layer.q0))
        self.epochs_trained = state["epochs_trained"]


# --------------------------------------------------------------------------- evaluation on scikit-learn data

DATASETS = ("wine", "breast_cancer", "digits")


@dataclass
class Split:
    """Min-max scaled (on the training part, clipped to [0, 1]) train / validation / test arrays."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max())) + 1


def load_split(dataset: str, seed: int = 0, test_size: float = 0.25, val_size: float = 0.15) -> Split:
    """A stratified split of a dataset that ships with scikit-learn (no download)."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    loaders = {"wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits}
    if dataset not in loaders:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {DATASETS}")
    x, y = loaders[dataset](return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    x_tr, x_va, y_tr, y_va = train_test_split(x_tr, y_tr, test_size=val_size, stratify=y_tr, random_state=seed)
    scaler = MinMaxScaler().fit(x_tr)
    scale = lambda a: np.clip(scaler.transform(a), 0.0, 1.0)  # noqa: E731
    return Split(scale(x_tr), y_tr, scale(x_va), y_va, scale(x_te), y_te)


def logistic_baseline(split: Split, seed: int = 0) -> float:
    """Test accuracy of scikit-learn's logistic regression trained on the same training part."""
    import multiprocessing

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


@dataclass
class FitReport:
    """What ``fit`` measured: per-epoch training spikes (per sample) and validation accuracy, best epoch."""

    train_spikes: list[float]
    val_accuracy: list[float]
    best_epoch: int


def fit(net: GTNetwork, split: Split, epochs: int, seed: int = 0, batch_size: int = 8, patience: int = 6,
        progress: bool = True) -> FitReport:
    """Train with the local rule; keep the Q0 of the best validation epoch (early stopping after ``patience``).

    Ties in validation accuracy go to the later epoch (fewer spikes).
    """
    import multiprocessing
    import threading

    from tqdm.auto import tqdm

    if multiprocessing.get_start_method(allow_none=True) is None and not hasattr(tqdm, "_lock"):
        # tqdm's default lock creates a multiprocessing lock, which fixes the start method; a later
        # `import lava` in the same process then fails ("context has already been set").
        tqdm.set_lock(threading.RLock())
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    xv, yv = torch.from_numpy(split.x_val), torch.from_numpy(split.y_val)
    spikes, val = [], []
    best, best_epoch, since = -1.0, 0, 0
    best_state = net.state_dict()
    bar = tqdm(total=epochs * len(x), desc=f"GT {net.cfg.architecture}", unit="sample", disable=not progress, leave=False)
    try:
        for epoch in range(epochs):
            spikes.append(net.train_epoch(x, y, batch_size, gen, bar) / len(x))
            acc = float((net.predict(xv)[0] == yv).double().mean())
            val.append(acc)
            bar.set_postfix(spikes=f"{spikes[-1]:.1f}", val=f"{acc:.3f}")
            if acc >= best:
                since = 0 if acc > best else since + 1
                best, best_epoch, best_state = acc, epoch, copy.deepcopy(net.state_dict())
            else:
                since += 1
            if since >= patience:
                break
    finally:
        bar.close()
    net.load_state_dict(best_state)
    return FitReport(spikes, val, best_epoch)


def evaluate(net: GTNetwork, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and energy (spikes per neuron per iteration of the predicting run) on ``(x, y)``."""
    pred, energy = net.predict(torch.from_numpy(x))
    return {"accuracy": float((pred == torch.from_numpy(y)).double().mean()), "energy": float(energy.mean())}
