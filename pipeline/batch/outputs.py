"""A batch's output folder: the lock, the run log, the summary table, and its tidying.

Every output is written atomically (``pipeline.files``), so a batch killed at any
moment leaves complete files only; its temp files are removed by the next run.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BatchError, Errors
from ..files import atomic_write
from ..report import Report
from .inputs import CASES_DIR_NAME

if TYPE_CHECKING:
    import pandas as pd

RUN_LOG_NAME = "run.log"
LOCK_NAME = ".batch.lock"
SUMMARY_COLUMNS = ("case_id", "divergence_id", "type", "topic", "topic_id", "score",
                   "side_a", "side_b", "claim_a", "claim_b", "explanation")


def summary_frame(reports: Iterable[Report]) -> "pd.DataFrame":
    """One row per divergence across reports: the table users filter and sort."""
    import pandas as pd

    rows = []
    for report in reports:
        claims = report.claims_by_id()
        for d in report.divergences:
            ids = [*d.claims, None, None]
            sides = [*d.sides, None, None]
            rows.append({
                "case_id": report.case.id,
                "divergence_id": d.id,
                "type": d.type,
                "topic": report.topics.get(d.topic or "", d.topic),
                "topic_id": d.topic,
                "score": float(d.score) if d.score is not None else None,
                "side_a": sides[0],
                "side_b": sides[1],
                "claim_a": claims[ids[0]].text if ids[0] else None,
                "claim_b": claims[ids[1]].text if ids[1] else None,
                "explanation": d.explanation,
            })
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return frame.astype({c: "string" for c in SUMMARY_COLUMNS if c != "score"} | {"score": "float64"})


def write_summary(out_dir: Path, case_ids: Iterable[str]) -> "pd.DataFrame":
    """``summary.parquet`` and ``summary.csv`` from the reports on disk, cases in id order."""
    reports = []
    for case_id in sorted(set(case_ids)):
        reports.append(Report.read(out_dir / case_id / "report.json"))
    frame = summary_frame(reports)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write(out_dir / "summary.parquet", buffer.getvalue())
    atomic_write(out_dir / "summary.csv", frame.to_csv(index=False))
    return frame


class RunLog:
    """``run.log``: one JSON line per case as it finishes, appended across runs.

    Each line is one ``write`` on an ``O_APPEND`` descriptor, so a kill never leaves
    half a line, and the log of a killed run survives for the rerun to follow.
    """

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, entry: dict[str, Any]) -> None:
        os.write(self.fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        os.close(self.fd)


@contextmanager
def exclusive(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.batch.lock``: two batches writing one folder would clean each other's temp files.
    The OS releases the lock when the process dies, so a killed batch never blocks its rerun."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent batches are the user's to avoid
        yield
        return
    path = out_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise BatchError(Errors.E118, path=out_dir, detail=err.strerror or str(err)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(Errors.E115, path=out_dir, lock=path) from None
        yield
    finally:
        os.close(fd)


def remove_stale_temps(out_dir: Path) -> None:
    # left by a killed run between mkstemp and os.replace; never visible under a real name
    for pattern in (".*.tmp", "*/.*.tmp", f"{CASES_DIR_NAME}/*/.*.tmp"):
        for path in out_dir.glob(pattern):
            path.unlink(missing_ok=True)


def prepare_out_dir(out_dir: Path) -> None:
    """Create the output folder, or say in one line why it cannot be written to."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BatchError(Errors.E118, path=out_dir, detail="it is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BatchError(Errors.E118, path=out_dir, detail=err.strerror or str(err)) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise BatchError(Errors.E118, path=out_dir, detail="permission denied")
