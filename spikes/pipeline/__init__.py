"""The end-to-end demo job: train the flagship models, deploy them, compare their sparsity in one report.

``run_demo(out_dir, quick=False) -> DemoResults`` (:mod:`spikes.pipeline.demo`); each stage function
(``spikes.pipeline.classifier/eprop/stereo/gt``) returns a :class:`StageResult` of run summaries.
"""
from spikes.pipeline.record import StageResult

__all__ = ["DemoResults", "STAGE_NAMES", "StageResult", "run_demo"]


def __getattr__(name):  # keep ``import spikes.pipeline`` light
    if name in ("run_demo", "DemoResults", "STAGE_NAMES"):
        from spikes.pipeline import demo
        return getattr(demo, name)
    raise AttributeError(name)
