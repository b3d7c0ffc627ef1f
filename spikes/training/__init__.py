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
from spikes.training.checkpoint import load_checkpoint, save_checkpoint
from spikes.training.config import ConfigError, TrainConfig, read_config_file, resolve_config, write_config
from spikes.training.data import batch_order, load_split, synthetic_frames
from spikes.training.loop import (CHECKPOINT_FILE, CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, build_model,
                                  evaluate, seed_everything, train)

__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "ConfigError", "METRICS_FILE", "SUMMARY_FILE", "TrainConfig",
           "batch_order", "build_model", "evaluate", "load_checkpoint", "load_split", "read_config_file",
           "resolve_config", "save_checkpoint", "seed_everything", "synthetic_frames", "train", "write_config"]
