"""Which rule trained this layer? Classifiers over the observables' trajectories of a rule zoo (Nayebi et al. 2020).

Input: the zoo file of :mod:`spikes.pipeline.rule_zoo` (one row per layer: ``obs (rows, settings, observables,
checkpoints)``, the class label, the network, the layer position) and its JSON beside it.

- Features (:func:`features`): the trajectories (21 checkpoints; as recorded, relative to their start, both, or the
  20 increments of the relative trajectory between successive checkpoints) of
  one observable family (``weights``: ``weight_*``;
  ``activations``: ``act_*`` and ``membrane_*``; ``activity_change``: ``gradavg_*``; ``all``) plus the layer position
  (early / middle / deep, one-hot). An observable is used when every row of the zoo has it (at some checkpoint of
  the clean recording); what is still missing (a constant tensor's skewness) is imputed by the training rows' mean.
  Every feature is z-scored on the training rows.
- Splits (:func:`network_splits`): ten category-balanced 75/25 splits *of the networks* (stratified by class; all
  layers of a network fall on the same side, so no network is seen in training and in test).
- Classifiers: ``rf`` a random forest (scikit-learn, ``n_estimators`` trees, ``max_features = sqrt``), ``svm`` a
  linear SVM (``LinearSVC``, C = 1e-3: on the 200-network zoo 41.9 % at C = 1, 47.7 % at 1e-3, 5 splits),
  ``conv1d`` a one-layer temporal convolution (torch: Conv1d over the checkpoints with the observables as channels,
  20 filters of width 5, ReLU, then a linear read-out of the flattened maps and the position; Adam lr 3e-3, 150
  full-batch epochs). The paper cross-validated grids of these; here one setting each.
- Scores: test accuracy over layers, mean and standard error of the mean over the ten splits; per-class accuracy
  (recall) pooled over the splits; and per network (:func:`network_votes`): the class whose scores summed over the
  network's layers are highest, the question asked of a whole recorded network rather than of one layer.
- Degradations: the zoo holds every (unit fraction, noise) setting its logger recorded
  (:func:`spikes.training.observables.settings`); accuracy vs fraction of units and vs noise is the random forest on
  the weights and on the activations, trained and tested on that setting's recording.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from spikes.training.observables import FAMILIES as FAMILY_PREFIXES   # the logger names the families

FAMILIES = tuple(FAMILY_PREFIXES)
CLASSIFIERS = ("rf", "svm", "conv1d")
AUGMENT = (0.5, 0.25)       # the CLI's and the bench's training views (evaluate's augment)


@dataclass
class Zoo:
    obs: np.ndarray            # (rows, settings, observables, checkpoints)
    label: np.ndarray          # (rows,) class index
    network: np.ndarray        # (rows,) network index
    position: np.ndarray       # (rows,) 0/1/2
    classes: list[str]
    observables: list[str]
    settings: list[tuple[float, float]]
    meta: dict[str, Any]


def load_zoo(path: str | Path) -> Zoo:
    """The zoo file ``path`` (``.npz``) with its ``.json`` beside it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"rules identify: no zoo file {path} (make one with 'spikes rules zoo --out DIR')")
    meta_path = path.with_suffix(".json")
    if not meta_path.exists():
        raise FileNotFoundError(f"rules identify: {path} has no {meta_path.name} beside it")
    meta = json.loads(meta_path.read_text())
    with np.load(path) as f:
        missing = [k for k in ("obs", "label", "network", "position") if k not in f]
        if missing:
            raise ValueError(f"rules identify: {path} is not a zoo file (no {missing[0]!r} array)")
        return Zoo(f["obs"].astype(np.float64), f["label"], f["network"], f["position"], list(meta["classes"]),
                   list(meta["observables"]), [tuple(s) for s in meta["settings"]], meta)


def select_classes(zoo: Zoo, classes: Sequence[str]) -> Zoo:
    """The rows of ``classes`` only (labels renumbered in that order)."""
    unknown = [c for c in classes if c not in zoo.classes]
    if unknown:
        raise ValueError(f"rules identify: class {unknown[0]!r} is not in the zoo (it has {', '.join(zoo.classes)})")
    old = [zoo.classes.index(c) for c in classes]
    keep = np.isin(zoo.label, old)
    relabel = {o: i for i, o in enumerate(old)}
    return Zoo(zoo.obs[keep], np.asarray([relabel[int(v)] for v in zoo.label[keep]]), zoo.network[keep],
               zoo.position[keep], list(classes), zoo.observables, zoo.settings, zoo.meta)


def family_observables(zoo: Zoo, family: str) -> list[int]:
    """Indices of ``family``'s observables that every row of the zoo has (clean recording, some checkpoint)."""
    if family not in FAMILY_PREFIXES:
        raise ValueError(f"rules identify: family {family!r} is unknown: choose among {', '.join(FAMILIES)}")
    prefixes = FAMILY_PREFIXES[family]
    present = np.isfinite(zoo.obs[:, 0]).any(-1).all(0)          # (observables,)
    return [i for i, name in enumerate(zoo.observables) if name.startswith(prefixes) and present[i]]


FEATURE_MODES = ("raw", "change", "both", "increments")


def features(zoo: Zoo, family: str, setting: int = 0, mode: str = "raw") -> np.ndarray:
    """``(rows, observables of the family, checkpoints)`` trajectories of one setting (NaN where missing).
    ``mode``: ``raw`` the recorded values; ``change`` each trajectory relative to its start, ``asinh((x_t - x_0) /
    (|x_0| + 1e-8))`` (scale-free across widths and data sets; the asinh only tames the tails for the SVM and the
    conv net, a forest is invariant to it); ``both`` the two stacked (twice the observables); ``increments`` the
    change's steps ``c_{t+1} - c_t`` (one checkpoint fewer): how fast each statistic moves in each stretch of the
    run, which a forest's axis-aligned splits cannot form from the levels (on the 80-network zoo of 2026-12-07 random
    forest accuracy on all observables 54 -> 63 %, activations 40 -> 48 %)."""
    if mode not in FEATURE_MODES:
        raise ValueError(f"rules identify: features {mode!r} is unknown: choose among {', '.join(FEATURE_MODES)}")
    idx = family_observables(zoo, family)
    if not idx:
        raise ValueError(f"rules identify: the zoo has no {family} observable that every layer has")
    raw = zoo.obs[:, setting][:, idx]
    if mode == "raw":
        return raw
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.arcsinh((raw - raw[..., :1]) / (np.abs(raw[..., :1]) + 1e-8))
    if mode == "increments":
        return np.diff(change, axis=-1)
    return change if mode == "change" else np.concatenate([raw, change], 1)


def network_splits(labels_of_networks: np.ndarray, n_splits: int = 10, test_fraction: float = 0.25,
                   seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` (train, test) partitions of the networks, each class split ``1 - test_fraction`` /
    ``test_fraction`` (at least one network on each side)."""
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(n_splits):
        train, test = [], []
        for c in np.unique(labels_of_networks):
            nets = rng.permutation(np.where(labels_of_networks == c)[0])
            n_test = min(max(1, int(round(test_fraction * len(nets)))), len(nets) - 1)
            test += list(nets[:n_test])
            train += list(nets[n_test:])
        splits.append((np.sort(train), np.sort(test)))
    return splits


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-score columns on ``train`` (clipped to +-10); missing values become the training mean (0), constant
    columns 0."""
    mean = np.nanmean(np.where(np.isfinite(train), train, np.nan), 0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    centred = np.where(np.isfinite(train), train, mean) - mean
    std = centred.std(0)
    std = np.where(std > 0, std, 1.0)
    fix = lambda a: np.clip((np.where(np.isfinite(a), a, mean) - mean) / std, -10.0, 10.0)  # noqa: E731
    return fix(train), fix(test)


def _flat(traj: np.ndarray, position: np.ndarray) -> np.ndarray:
    return np.concatenate([traj.reshape(len(traj), -1), np.eye(3)[position]], 1)


def fit_scores(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, pos_train: np.ndarray,
               pos_test: np.ndarray, n_classes: int, seed: int = 0, n_estimators: int = 100) -> np.ndarray:
    """Train classifier ``name`` on trajectories ``(n, observables, checkpoints)``; ``(test rows, n_classes)`` class
    scores of the test rows, larger = likelier: the log of the forest's vote share (+ 1e-3), the SVM's decision
    values, the conv net's log-softmax (a class absent from training scores -inf)."""
    if name in ("rf", "svm"):
        a, b = _standardise(_flat(x_train, pos_train), _flat(x_test, pos_test))
        if name == "rf":
            clf = _forest(n_estimators, seed).fit(a, y_train)
            seen = np.log(clf.predict_proba(b) + 1e-3)
        else:
            from sklearn.svm import LinearSVC
            clf = LinearSVC(C=1e-3, max_iter=5000, dual=True, random_state=seed).fit(a, y_train)
            seen = clf.decision_function(b)
            if seen.ndim == 1:                       # two classes: one signed margin
                seen = np.stack([-seen, seen], 1)
        out = np.full((len(x_test), n_classes), -np.inf)
        out[:, clf.classes_] = seen
        return out
    if name == "conv1d":
        return _conv1d(x_train, y_train, x_test, pos_train, pos_test, n_classes, seed)
    raise ValueError(f"rules identify: classifier {name!r} is unknown: choose among {', '.join(CLASSIFIERS)}")


def _forest(n_estimators: int, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    return RandomForestClassifier(n_estimators=n_estimators, max_features="sqrt", random_state=seed, n_jobs=1)


def _stack_views(views: list[np.ndarray], rows: np.ndarray, label: np.ndarray,
                 position: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training set of ``rows`` over several recordings of them (``views``: trajectories of every row, one array
    per setting): trajectories, labels and positions, view after view."""
    return (np.concatenate([v[rows] for v in views]), np.tile(label[rows], len(views)),
            np.tile(position[rows], len(views)))


def network_votes(scores: np.ndarray, network: np.ndarray) -> dict[int, int]:
    """Which rule trained each network, from its layers: ``argmax_c sum_layers score_c`` (with log-probabilities,
    the naive-Bayes combination of the layers as independent witnesses). ``scores (rows, classes)``, ``network
    (rows,)`` -> ``{network: class}``."""
    return {int(k): int(scores[network == k].sum(0).argmax()) for k in np.unique(network)}


def _conv1d(x_train, y_train, x_test, pos_train, pos_test, n_classes, seed, epochs: int = 150) -> np.ndarray:
    import torch
    from torch import nn

    n, c, t = x_train.shape
    a, b = _standardise(x_train.reshape(n, -1), x_test.reshape(len(x_test), -1))
    a, b = a.reshape(n, c, t), b.reshape(len(x_test), c, t)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        kernel = min(5, t)
        conv = nn.Conv1d(c, 20, kernel)
        head = nn.Linear(20 * (t - kernel + 1) + 3, n_classes)
        params = list(conv.parameters()) + list(head.parameters())
        opt = torch.optim.Adam(params, lr=3e-3, weight_decay=1e-4)
        xa = torch.tensor(a, dtype=torch.float32)
        pa = torch.eye(3)[torch.as_tensor(pos_train)]
        ya = torch.as_tensor(y_train, dtype=torch.long)
        forward = lambda x, p: head(torch.cat([torch.relu(conv(x)).flatten(1), p], 1))  # noqa: E731
        for _ in range(epochs):
            opt.zero_grad()
            nn.functional.cross_entropy(forward(xa, pa), ya).backward()
            opt.step()
        with torch.no_grad():
            logits = forward(torch.tensor(b, dtype=torch.float32), torch.eye(3)[torch.as_tensor(pos_test)])
            scores = torch.log_softmax(logits, 1)
    finally:
        torch.random.set_rng_state(gen_state)
    return scores.double().numpy()


def augment_settings(zoo: Zoo, fractions: Sequence[float]) -> list[int]:
    """The zoo's setting indices of the noise-free recordings at unit ``fractions`` (ValueError naming a fraction the
    logger did not record)."""
    out = []
    for f in fractions:
        match = [s for s, (frac, noise) in enumerate(zoo.settings) if math.isclose(frac, f) and noise == 0.0]
        if not match:
            have = sorted({frac for frac, noise in zoo.settings if noise == 0.0}, reverse=True)
            raise ValueError(f"rules identify: augment fraction {f:g} is not recorded in the zoo (its noise-free "
                             f"unit fractions: {', '.join(f'{h:g}' for h in have)})")
        out.append(match[0])
    return out


def evaluate(zoo: Zoo, family: str, classifier: str, setting: int = 0, n_splits: int = 10, seed: int = 0,
             shuffle_labels: bool = False, n_estimators: int = 100, features_mode: str = "raw",
             augment: Sequence[float] = ()) -> dict[str, Any]:
    """Accuracy of ``classifier`` on ``family`` over :func:`network_splits`: ``{mean, sem, accuracies,
    per_class, confusion, network}`` (accuracy in [0, 1], per layer; ``confusion[true][predicted]``: test layers
    pooled over the splits; ``network``: ``{mean, sem, accuracies}`` of
    :func:`network_votes` over the test networks, every layer of a network recorded; ``shuffle_labels`` permutes the
    networks' labels first: chance). ``augment``: unit fractions whose noise-free recordings *of the training
    networks* join the training rows as further examples (other views of the same layers; the test rows stay the
    ``setting`` recording of networks never trained on). On the 200-network zoo (5 splits) 0.5 and 0.25 took the
    random forest on all observables from 65.1 to 69.3 %."""
    traj = features(zoo, family, setting, features_mode)
    views = [traj] + [features(zoo, family, s, features_mode) for s in augment_settings(zoo, augment)]
    nets = np.unique(zoo.network)
    net_label = np.asarray([zoo.label[zoo.network == k][0] for k in nets])
    if shuffle_labels:
        net_label = np.random.default_rng(seed + 12345).permutation(net_label)
    row_label = net_label[np.searchsorted(nets, zoo.network)]
    n_classes = len(zoo.classes)
    accs, net_accs, confusion = [], [], np.zeros((n_classes, n_classes), dtype=np.int64)
    for k, (tr, te) in enumerate(network_splits(net_label, n_splits, 0.25, seed)):
        r_tr, r_te = np.isin(zoo.network, nets[tr]), np.isin(zoo.network, nets[te])
        x_train, y_train, pos_train = _stack_views(views, r_tr, row_label, zoo.position)
        scores = fit_scores(classifier, x_train, y_train, traj[r_te], pos_train, zoo.position[r_te], n_classes,
                            seed + k, n_estimators)
        pred, truth = scores.argmax(1), row_label[r_te]
        accs.append(float((pred == truth).mean()))
        votes = network_votes(scores, zoo.network[r_te])
        net_accs.append(float(np.mean([votes[int(n)] == net_label[np.searchsorted(nets, n)] for n in votes])))
        np.add.at(confusion, (truth, pred), 1)
    counts = confusion.sum(1)
    return {**_mean_sem(accs), "n_features": int(traj.shape[1] * traj.shape[2] + 3),
            "per_class": {c: (float(confusion[i, i] / counts[i]) if counts[i] else None)
                          for i, c in enumerate(zoo.classes)},
            "confusion": confusion.tolist(), "network": _mean_sem(net_accs)}


def _mean_sem(accs: list[float]) -> dict[str, Any]:
    a = np.asarray(accs)
    return {"mean": float(a.mean()), "sem": float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else 0.0,
            "accuracies": list(accs)}


def observable_importance(zoo: Zoo, family: str = "all", features_mode: str = "raw", augment: Sequence[float] = (),
                          n_estimators: int = 100, seed: int = 0) -> list[tuple[str, float]]:
    """Which observables the random forest leans on: one forest on every network (with ``augment``'s views), its
    impurity-based importances (mean decrease in Gini impurity, summing to 1) summed over each observable's
    checkpoints; ``[(observable, share)]``, largest first (the layer position's share left out)."""
    idx = family_observables(zoo, family)
    views = [features(zoo, family, s, features_mode) for s in [0, *augment_settings(zoo, augment)]]
    x, y, pos = _stack_views(views, np.ones(len(zoo.label), dtype=bool), zoo.label, zoo.position)
    flat, _ = _standardise(_flat(x, pos), _flat(x[:1], pos[:1]))      # as fit_scores scales its training rows
    forest = _forest(n_estimators, seed).fit(flat, y)
    per_obs = forest.feature_importances_[:-3].reshape(len(idx), x.shape[-1]).sum(1)    # [-3:]: the position
    order = np.argsort(-per_obs, kind="stable")
    return [(zoo.observables[idx[i]], float(per_obs[i])) for i in order]


def identify(zoo: Zoo, classifiers: Sequence[str] = CLASSIFIERS, families: Sequence[str] = FAMILIES,
             n_splits: int = 10, seed: int = 0, robustness: bool = True, n_estimators: int = 100,
             progress: Callable[[str], None] | None = None, features_mode: str = "raw",
             robustness_splits: int | None = None, augment: Sequence[float] = ()) -> dict[str, Any]:
    """Every classifier on every family (clean recording), and the random forest on weights and activations under
    every recorded degradation (over ``robustness_splits`` splits, default ``n_splits``): ``{classes, chance,
    scores {classifier: {family: evaluate()}}, robustness [{fraction, noise, weights, activations}]}``.
    ``augment`` (:func:`evaluate`) applies to the clean scores; each robustness point trains and tests on its own
    setting's recording alone."""
    augment_settings(zoo, augment)           # a fraction the zoo lacks fails before any classifier runs
    scores: dict[str, dict[str, Any]] = {}
    skipped = [f for f in families if not family_observables(zoo, f)]
    for clf in classifiers:
        for fam in families:
            if fam in skipped:
                continue
            if progress:
                progress(f"{clf} on {fam}")
            scores.setdefault(clf, {})[fam] = evaluate(zoo, fam, clf, 0, n_splits, seed, n_estimators=n_estimators,
                                                       features_mode=features_mode, augment=augment)
    curves = []
    if robustness:
        for s, (fraction, noise) in enumerate(zoo.settings):
            if progress:
                progress(f"rf at unit fraction {fraction:g}, noise {noise:g}")
            row = {"fraction": fraction, "noise": noise}
            for fam in ("weights", "activations"):
                if fam in skipped:
                    continue
                r = evaluate(zoo, fam, "rf", s, robustness_splits or n_splits, seed, n_estimators=n_estimators,
                             features_mode=features_mode)
                row[fam] = {"mean": r["mean"], "sem": r["sem"]}
            curves.append(row)
    importance = (observable_importance(zoo, "all", features_mode, augment, n_estimators, seed)
                  if "rf" in classifiers and "all" in families and "all" not in skipped else None)
    return {"classes": zoo.classes, "chance": 1.0 / len(zoo.classes), "n_layers": int(len(zoo.label)),
            "importance": importance,
            "n_networks": int(len(np.unique(zoo.network))), "scores": scores, "robustness": curves,
            "families_missing": skipped, "features": features_mode, "augment": list(augment), "splits": n_splits,
            "robustness_splits": robustness_splits or n_splits}


def robustness_drop(result: dict[str, Any], fraction: float = 0.1) -> dict[str, float] | None:
    """Points lost by the weights and by the activations at ``fraction`` of units, vs all units (None: not
    recorded)."""
    curves = result.get("robustness") or []
    clean = next((r for r in curves if r["fraction"] == 1.0 and r["noise"] == 0.0), None)
    part = next((r for r in curves if math.isclose(r["fraction"], fraction) and r["noise"] == 0.0), None)
    if clean is None or part is None:
        return None
    return {fam: 100 * (clean[fam]["mean"] - part[fam]["mean"]) for fam in ("weights", "activations")
            if fam in clean and fam in part}


def format_result(result: dict[str, Any]) -> str:
    """The accuracy table (percent, mean +- s.e.m.), per-class accuracies of the random forest on all observables,
    and the robustness rows."""
    fams = sorted({f for v in result["scores"].values() for f in v}, key=FAMILIES.index)
    both = ("weights", "activations")
    lines = [f"{result['n_networks']} networks, {result['n_layers']} layers, classes {', '.join(result['classes'])} "
             f"(chance {100 * result['chance']:.1f} %)", "",
             "| classifier | " + " | ".join(fams) + " |", "|---" * (len(fams) + 1) + "|"]
    for clf, by_fam in result["scores"].items():
        lines.append(f"| {clf} | " + " | ".join(f"{100 * by_fam[f]['mean']:.1f} +- {100 * by_fam[f]['sem']:.1f}"
                                                  for f in fams) + " |")
    if result.get("families_missing"):
        lines.append(f"(not every layer has {', '.join(result['families_missing'])}: left out)")
    if all("network" in by_fam[f] for by_fam in result["scores"].values() for f in fams):
        lines += ["", "per network (its layers' scores summed):", "",
                  "| classifier | " + " | ".join(fams) + " |", "|---" * (len(fams) + 1) + "|"]
        for clf, by_fam in result["scores"].items():
            lines.append(f"| {clf} | " + " | ".join(
                f"{100 * by_fam[f]['network']['mean']:.1f} +- {100 * by_fam[f]['network']['sem']:.1f}"
                for f in fams) + " |")
    rf_all = result["scores"].get("rf", {}).get("all")
    if rf_all:
        lines += ["", "per-class accuracy (rf, all): " + ", ".join(
            f"{c} {100 * v:.1f} %" for c, v in rf_all["per_class"].items() if v is not None)]
        if "confusion" in rf_all:
            classes = result["classes"]
            lines += ["", "confusion (rf, all; rows: the rule that trained the layer, columns: the forest's guess; "
                      "test layers pooled over the splits):", "",
                      "| true → guess | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
            lines += [f"| {c} | " + " | ".join(str(v) for v in row) + " |"
                      for c, row in zip(classes, rf_all["confusion"])]
    if result.get("importance"):
        lines += ["", "observables the forest leans on (all, impurity importance): " + ", ".join(
            f"{name} {100 * share:.1f} %" for name, share in result["importance"][:10])]
    if result["robustness"]:
        lines += ["", "| units observed | noise | rf weights | rf activations |", "|---|---|---|---|"]
        for r in result["robustness"]:
            cells = [f"{100 * r[f]['mean']:.1f} +- {100 * r[f]['sem']:.1f}" if f in r else "-" for f in both]
            lines.append(f"| {r['fraction']:g} | {r['noise']:g} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def robustness_figure(result: dict[str, Any], title: str = ""):
    """Accuracy of the random forest on weights and on activations vs fraction of units observed (left) and vs
    measurement noise (right), mean +- s.e.m. over the splits, chance dashed."""
    from matplotlib.figure import Figure

    curves = result["robustness"]
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, other, label in ((axes[0], "fraction", "noise", "fraction of units observed"),
                                  (axes[1], "noise", "fraction", "measurement noise (x initial std)")):
        rows = sorted((r for r in curves if r[other] == (0.0 if other == "noise" else 1.0)), key=lambda r: r[key])
        for fam, colour in (("weights", "tab:blue"), ("activations", "tab:orange")):
            if not rows or fam not in rows[0]:
                continue
            xs = [r[key] for r in rows]
            ys = np.asarray([100 * r[fam]["mean"] for r in rows])
            es = np.asarray([100 * r[fam]["sem"] for r in rows])
            ax.errorbar(xs, ys, yerr=es, marker="o", color=colour, label=fam, capsize=3)
        ax.axhline(100 * result["chance"], color="grey", ls="--", lw=1, label="chance")
        ax.set_xlabel(label)
        if key == "fraction":
            ax.set_xscale("log")
            ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%), random forest")
    axes[0].legend(loc="lower left")
    fig.suptitle(title or f"Which rule? {', '.join(result['classes'])} ({result['n_networks']} networks)")
    fig.tight_layout()
    return fig


def accuracy_figure(result: dict[str, Any], title: str = ""):
    """Test accuracy per classifier and observable family (mean +- s.e.m. over the splits), per layer (left) and,
    where the result has it, per network (right, :func:`network_votes`); chance dashed."""
    from matplotlib.figure import Figure

    scores = result["scores"]
    fams = sorted({f for v in scores.values() for f in v}, key=FAMILIES.index)
    views = [("per layer", lambda r: r)]
    if scores and all("network" in r for v in scores.values() for r in v.values()):
        views.append(("per network (its layers' scores summed)", lambda r: r["network"]))
    fig = Figure(figsize=(len(views) * (1.6 + 1.5 * len(fams)), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(views), sharey=True))
    width = 0.8 / max(len(scores), 1)
    for ax, (name, pick) in zip(axes, views):
        for k, (clf, by_fam) in enumerate(scores.items()):
            xs = np.arange(len(fams)) + (k - (len(scores) - 1) / 2) * width
            ax.bar(xs, [100 * pick(by_fam[f])["mean"] for f in fams], width,
                   yerr=[100 * pick(by_fam[f])["sem"] for f in fams], capsize=2, label=clf)
        ax.axhline(100 * result["chance"], color="grey", ls="--", lw=1, label="chance")
        ax.set_xticks(np.arange(len(fams)), [f.replace("_", " ") for f in fams])
        ax.set_ylim(0, 100)
        ax.set_title(name, fontsize=9)
    axes[0].set_ylabel("test accuracy (%)")
    axes[-1].legend(loc="upper right", fontsize=8, ncol=4)
    fig.suptitle(title or f"Which rule? {', '.join(result['classes'])} ({result['n_networks']} networks)",
                 fontsize=10)
    fig.tight_layout()
    return fig
