"""Tabular sets that ship with scikit-learn (no download): stratified, min-max scaled splits.

``load_split(dataset, seed)`` splits twice with scikit-learn's ``train_test_split`` (``stratify`` = the
labels, ``random_state = seed``): test = ``test_size`` of all samples, then validation = ``val_size`` of the
rest. A ``MinMaxScaler`` is fitted on the training part only and every part is mapped through it and clipped
to [0, 1]: ``x' = clip((x - min_train) / (max_train - min_train), 0, 1)`` per feature.

``moons`` is generated, not loaded: scikit-learn's ``make_moons`` (two interleaving half circles, 2 features,
2 classes), ``MOONS_SAMPLES`` points with Gaussian noise ``MOONS_NOISE``, drawn from ``random_state = seed``.

scikit-learn is imported on use only (a heavy optional dependency of this layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DATASETS = ("wine", "breast_cancer", "digits", "moons")
MOONS_SAMPLES, MOONS_NOISE = 1000, 0.2


@dataclass
class Split:
    """Min-max scaled (on the training part, clipped to [0, 1]) train / validation / test arrays.

    ``classes``: the class names (scikit-learn's ``target_names``), index = label.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max())) + 1


def load_split(dataset: str, seed: int = 0, test_size: float = 0.25, val_size: float = 0.15) -> Split:
    """A stratified split of a dataset that ships with scikit-learn (no download); see the module docstring."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler

    loaders = {"wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits}
    if dataset not in (*loaders, "moons"):
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {DATASETS}")
    if dataset == "moons":
        x, y = datasets.make_moons(MOONS_SAMPLES, noise=MOONS_NOISE, random_state=seed)
        names = ["upper", "lower"]
    else:
        bunch = loaders[dataset]()
        x, y, names = bunch.data, bunch.target, list(bunch.target_names)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    x_tr, x_va, y_tr, y_va = train_test_split(x_tr, y_tr, test_size=val_size, stratify=y_tr, random_state=seed)
    scaler = MinMaxScaler().fit(x_tr)
    scale = lambda a: np.clip(scaler.transform(a), 0.0, 1.0)  # noqa: E731
    return Split(scale(x_tr), y_tr, scale(x_va), y_va, scale(x_te), y_te, [str(c) for c in names])
