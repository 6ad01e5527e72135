"""How to run a batch (what to compute is ``RunConfig``'s business) and what a batch reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import BatchError, Errors

Status = Literal["ok", "skipped", "failed"]
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchConfig:
    """How to run a batch: the engine, its workers, and what to redo."""

    workers: int = 1
    engine: Literal["local", "ray"] = "local"
    address: str | None = None  # Ray cluster address; None: RAY_ADDRESS, a running local instance, or a new one
    force: bool = False  # recompute even unchanged cases
    fail_fast: bool = False  # stop at the first failed case
    threads_per_worker: int | None = None  # torch threads; None: cores // workers (1 per Ray actor)

    def validate(self) -> None:
        if self.workers < 1:
            raise BatchError(Errors.E114, detail=f"--workers must be at least 1, got {self.workers}")
        if self.engine not in ENGINES:
            raise BatchError(Errors.E114, detail=f"--engine must be 'local' or 'ray', got {self.engine!r}")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise BatchError(Errors.E114, detail=f"--threads-per-worker must be at least 1, got {self.threads_per_worker}")
        if self.address and self.engine != "ray":
            raise BatchError(Errors.E114, detail="--address only applies to --engine ray")


@dataclass
class CaseOutcome:
    """One case's result, as it travels back from a worker (report text included)."""

    case_id: str
    case_dir: str
    status: Status
    seconds: float
    error: str | None = None
    fingerprint: str | None = None
    report_json: str | None = None
    report_html: str | None = None
    documents: int = 0
    words: int = 0
    worker_rss_mb: float | None = None  # peak RSS of the process that analysed the case
    fatal: bool = False  # the worker itself is unusable (models failed to load): stop the batch

    def log_entry(self, run: str) -> dict[str, Any]:
        return {"run": run, "case": self.case_id, "status": self.status, "seconds": round(self.seconds, 3),
                "error": self.error, "case_dir": self.case_dir, "documents": self.documents,
                "words": self.words, "worker_rss_mb": self.worker_rss_mb}


@dataclass
class BatchResult:
    out_dir: Path
    outcomes: list[CaseOutcome]  # report text dropped: it is on disk
    seconds: float
    divergences: int = 0  # rows in the summary table
    stopped_early: bool = False  # --fail-fast stopped the batch

    def by_status(self, status: Status) -> list[CaseOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[CaseOutcome]:
        return self.by_status("failed")

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped_early


@dataclass(frozen=True)
class Job:
    """A case an engine is to analyse."""

    case_id: str
    case_dir: str
    fingerprint: str
    size: int  # bytes of input, to start the largest cases first
