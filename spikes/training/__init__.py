"""Training of spiking classifiers: config, seeded data order, resumable loop, checkpoints.

Run directory layout (``spikes train --run-dir DIR``; a later ``compare`` command reads these files)::

    DIR/config.toml     the resolved config: every key of TrainConfig, flat TOML (file <- flags <- defaults)
    DIR/checkpoint.pt   torch.save dict: model, optimizer, scheduler state dicts; rng (torch/numpy/python);
                        position {epoch, batch (next batch of that epoch), step (optimizer steps done)};
                        config; version. Rewritten atomically every ``checkpoint_every`` steps and at each
                        epoch end; after the run it holds the final weights.
    DIR/metrics.jsonl   one JSON object per optimizer step, appended and flushed as it happens:
                        {step, epoch, batch, loss, accuracy, firing_rate, lr, time_s}
                        (firing_rate: spikes per neuron per step over all spiking layers, this batch)
    DIR/summary.json    written at the end: completed, steps, epochs_done, dataset, n_train, n_test,
                        n_parameters, test_loss, test_accuracy, mean_firing_rate,
                        firing_rates {layer: rate}, synops_per_sample, layers (SpikeProbe table rows on
                        the test set), wall_time_s, config

Resuming (``--resume``) restores everything in the checkpoint and skips the batches already done in the
current epoch (the order is a pure function of seed and epoch), so a run killed at any point and resumed
ends with the same weights as an uninterrupted one; log lines past the checkpoint are dropped.
"""
from __future__ import annotations

import importlib

# Lazy exports: ``spikes.training.config`` is imported by the CLI to build its flags without loading torch.
_EXPORTS = {
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "ConfigError": "config", "TrainConfig": "config", "read_config_file": "config", "resolve_config": "config",
    "write_config": "config",
    "batch_order": "data", "load_split": "data", "synthetic_frames": "data",
    "CHECKPOINT_FILE": "loop", "CONFIG_FILE": "loop", "METRICS_FILE": "loop", "SUMMARY_FILE": "loop",
    "build_model": "loop", "evaluate": "loop", "seed_everything": "loop", "train": "loop",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"spikes.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'spikes.training' has no attribute {name!r}")
