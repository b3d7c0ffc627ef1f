"""One rank of a data-parallel test run (tests/test_training_distributed.py starts several, as torchrun would).

``python tests/distributed_worker.py SPEC.json`` with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set. SPEC: the run's
flat config keys ("config"), the [rule] table ("rule"), "run_dir", "resume", "record" (file where rank 0 writes the weights after every
step), "kill_rank"/"kill_step" (that rank SIGKILLs itself when the step is done: a rank dying mid-run).
"""
from __future__ import annotations

import json
import os
import signal
import sys

import torch

from spikes.training import resolve_config, train
from spikes.training.callbacks import Callback
from spikes.training.distributed import init_from_env, shutdown


class Record(Callback):
    """The weights after every step (a list of state dicts)."""

    def __init__(self):
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_step_end(self, state, out) -> None:
        self.steps.append({k: v.detach().clone() for k, v in state.model.state_dict().items()})


class KillAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, state, out) -> None:
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main(spec_path: str) -> int:
    spec = json.loads(open(spec_path).read())
    world = init_from_env(timeout_s=60)
    record = Record()
    callbacks = [record]
    if spec.get("kill_step") and world.rank == spec.get("kill_rank", 1):
        callbacks.append(KillAt(spec["kill_step"]))
    config = resolve_config(None, {"rule": spec.get("rule", {})}, spec["config"])
    train(config, spec["run_dir"], resume=spec.get("resume", False), log=lambda m: None,
          callbacks=callbacks)
    if world.main and spec.get("record"):
        torch.save(record.steps, spec["record"])
    shutdown(barrier=True)      # as the CLI does on success: no rank tears gloo down while another still talks
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
