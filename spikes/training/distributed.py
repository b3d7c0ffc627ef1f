"""Data-parallel training over ``torch.distributed``: the process group, each rank's shard of a batch, gradient
averaging, and metrics reduced across ranks. The trainer (:mod:`spikes.training.loop`) uses it when a process group
is up (``spikes train --nproc N``, or ``torchrun --nproc_per_node N -m spikes train ...``); one process needs none
of it.

The arithmetic that makes N processes train the same weights as one:

- every rank draws the same seeded batch order (:func:`spikes.training.data.batch_order`); the global batch ``I``
  of step k is split by stride, rank r taking ``I[r::N]`` (what ``DistributedSampler`` hands each rank when the
  per-rank batch is ``|I| / N``; no sample is repeated to pad a short last batch);
- each rank's rule computes the gradient ``g_r`` of its shard's mean loss; before every optimizer step the
  gradients are replaced by ``g = sum_r (n_r / n) g_r`` (one ``all_reduce``), the gradient of the mean loss over
  the global batch, so every rank's optimizer takes the step the one-process run takes. A rank whose shard would be
  empty (a last batch shorter than N) runs one sample of the batch with weight 0;
- neuron state lives in the forward pass and is reset per sequence, so no buffer is synchronised (the pitfall of
  ``DistributedDataParallel(broadcast_buffers=True)`` with stateful neurons does not arise);
- rank 0 broadcasts its weights and the checkpoint it read, and alone writes files (checkpoint, log, summary);
- step metrics are sums over the global batch (``all_reduce``); evaluation splits the batches across the ranks and
  adds their metric sums and activity counts.

Rules whose updates are not gradients averaged by the optimizer (``LearningRule.data_parallel = False``) are
refused by the trainer with a message naming the rule. BatchNorm layers normalise over each rank's shard (as in
plain DDP), so a model with BatchNorm does not reproduce the one-process run.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

ENV_KEYS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """The processes of one run: this one's ``rank`` among ``size`` (``size == 1``: no process group)."""

    rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0

    def shard(self, indices: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``(this rank's samples of the global batch indices, their weight n_r / n)``: the stride split
        ``indices[rank::size]``; an empty shard becomes the batch's first sample with weight 0."""
        mine = indices[self.rank::self.size]
        if len(mine) == 0:
            return indices[:1], 0.0
        return mine, len(mine) / len(indices)


def current() -> World:
    """The world of the process group this process belongs to (one process when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def default_backend() -> str:
    """``gloo``: the trainer keeps its tensors on the CPU (nccl reduces CUDA tensors only, so it is chosen
    explicitly, ``SPIKES_DIST_BACKEND=nccl``, for a model on the GPU)."""
    return "gloo"


def init_from_env(backend: str | None = None, timeout_s: float = 1800.0) -> World:
    """Join the process group torchrun describes in the environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``); without ``WORLD_SIZE > 1`` nothing is initialised and one process is returned. ``backend``:
    ``gloo`` or ``nccl`` (default: ``SPIKES_DIST_BACKEND`` if set, else :func:`default_backend`).
    Joining twice is harmless."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if dist.is_initialized():
        return current()
    missing = [k for k in ENV_KEYS if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={size} but the environment lacks {missing}: launch with torchrun or "
                         "spikes train --nproc N")
    backend = backend or os.environ.get("SPIKES_DIST_BACKEND") or default_backend()
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"distributed backend {backend!r}: expected 'gloo' or 'nccl'")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return current()


def shutdown(barrier: bool = False) -> None:
    """Leave the process group (if this process is in one). ``barrier``: first wait until every rank is leaving
    (the success path: a rank that tore gloo down while another still sent to it aborted that one, "terminate called
    without an active exception"); an error path leaves at once, since the other ranks may be gone."""
    if dist.is_available() and dist.is_initialized():
        try:
            if barrier:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def broadcast_object(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; checkpoints, errors)."""
    if not world.distributed:
        return obj
    box = [obj if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@torch.no_grad()
def broadcast_module(module, world: World) -> None:
    """Rank 0's parameters and buffers on every rank."""
    if world.distributed and hasattr(module, "state_dict"):
        for tensor in module.state_dict().values():
            if isinstance(tensor, torch.Tensor):
                dist.broadcast(tensor, src=0)


class GradientAverager:
    """Before each step of ``optimizer``: every parameter's gradient becomes ``sum_r w_r g_r`` over the ranks, with
    ``w_r = self.weight`` set by the trainer per batch (the rank's share of the batch). A gradient that is None on
    every rank stays None (the optimizer skips that parameter, as it would in one process); one that is None on
    some ranks counts as zero there."""

    def __init__(self, optimizer: torch.optim.Optimizer, world: World):
        self.optimizer, self.world = optimizer, world
        self.weight = 1.0 / world.size
        self.handle = optimizer.register_step_pre_hook(self._average)

    def params(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    @torch.no_grad()
    def _average(self, optimizer, args, kwargs) -> None:
        params = self.params()
        if not params:
            return
        present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32)
        dist.all_reduce(present, op=dist.ReduceOp.MAX)
        live = [p for p, h in zip(params, present.tolist()) if h]
        if not live:
            return
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(torch.float64)
                          for p in live]) * self.weight
        dist.all_reduce(flat)
        offset = 0
        for p in live:
            n = p.numel()
            g = flat[offset:offset + n].view_as(p).to(p.dtype)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
            offset += n

    def remove(self) -> None:
        self.handle.remove()


def reduce_sums(values: dict[str, float], world: World) -> dict[str, float]:
    """Sums over the ranks of each key (every rank passes the same keys; float64)."""
    if not world.distributed or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist()))


def gather_objects(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj``, in rank order (one list on every rank)."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def merge_probe(probe, world: World) -> None:
    """Add the other ranks' activity counts into ``probe`` (a :class:`spikes.metrics.probe.SpikeProbe` each rank
    ran on its own batches), so its table covers every sample."""
    if not world.distributed:
        return
    summed = ("calls", "out_nonzero", "out_numel", "spikes", "in_nonzero", "in_numel", "synops")
    mine = {"samples": probe.samples,
            "stats": {name: {**{f: getattr(st, f) for f in summed}, "neurons": st.neurons, "steps": st.steps,
                             "input_binary": st.input_binary} for name, st in probe.stats.items()}}
    every = gather_objects(mine, world)
    probe.samples = sum(o["samples"] for o in every)
    for name, st in probe.stats.items():
        rows = [o["stats"][name] for o in every if name in o["stats"]]
        for f in summed:
            setattr(st, f, type(getattr(st, f))(sum(r[f] for r in rows)))
        seen = [r for r in rows if r["calls"]]
        if seen:
            st.neurons, st.steps = seen[0]["neurons"], seen[0]["steps"]
        st.input_binary = all(r["input_binary"] for r in rows)
