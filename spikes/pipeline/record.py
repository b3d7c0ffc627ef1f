"""The result record of one pipeline stage."""
from __future__ import annotations

from dataclasses import dataclass, field

from spikes.reports.summary import RunSummary

STATUSES = ("ok", "skipped", "failed")


@dataclass
class StageResult:
    """What a stage produced: run summaries (torch, and deployed backends when available) and its status.

    ``status``: ``ok``; ``skipped`` (a dependency is not available: ``reason`` says which, and no result
    is made up); ``failed`` (an exception: ``reason`` holds it). ``notes``: caveats shown in the report
    (e.g. backends not run and why).
    """

    name: str
    title: str
    status: str = "ok"
    summaries: list[RunSummary] = field(default_factory=list)
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"StageResult.status must be one of {STATUSES}, got {self.status!r}")

    def line(self) -> str:
        """One line for logs: name, status, time, runs or reason."""
        what = f"{len(self.summaries)} run(s)" if self.status == "ok" else self.reason
        return f"{self.name:<12} {self.status:<8} {self.seconds:6.1f} s  {what}"
