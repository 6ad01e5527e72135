"""The batch driver: which cases to analyse, an engine to analyse them, the only writer of outputs.

Three properties shape it:

* **Incremental.** A case whose fingerprint (``fingerprints``) still matches its
  outputs is skipped; the driver decides this on probed model versions, so a rerun
  with nothing changed starts no worker and loads no model.
* **Resumable.** Every output is written atomically, and a case's ``.fingerprint``
  is written only after its report. A batch killed at any moment leaves each case
  either finished and fingerprinted, or not fingerprinted and redone on the next run.
  The rerun produces exactly what an uninterrupted run would.
* **Engine-agnostic.** The same ``CaseAnalyser`` runs in a local process pool
  (``local``) or in Ray Data actors (``ray_engine``); only the driver writes files, so
  both engines give byte-identical outputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from ..config import RunConfig
from ..errors import BatchError, CaseError, Errors
from ..manifest import MANIFEST_NAME
from ..registry import model_versions
from .config import BatchConfig, BatchResult, CaseOutcome, Job
from .fingerprints import case_fingerprint, case_inputs, commit_case, environment_fingerprint, is_current
from .inputs import find_input
from .outputs import RUN_LOG_NAME, RunLog, exclusive, prepare_out_dir, remove_stale_temps, write_summary
from .progress import ProgressReporter
from .worker import CaseAnalyser


class Engine(Protocol):
    """Analyses ``jobs`` and yields one outcome per job, in any order, report text included."""

    def __call__(self, jobs: Sequence[Job], *, config: RunConfig, options: BatchConfig,
                 analyser: CaseAnalyser | None = None, allowed_roots: Sequence[Path] = ()) -> Iterator[CaseOutcome]: ...


def engine_for(name: str) -> Engine:
    if name == "ray":
        from .ray_engine import ray_engine

        return ray_engine
    from .local import local_engine

    return local_engine


@dataclass
class _Plan:
    """The cases of a batch sorted before any analysis: settled ones, and jobs for an engine."""

    total: int
    prechecked: list[CaseOutcome] = field(default_factory=list)  # failed before analysis, or unchanged
    jobs: list[Job] = field(default_factory=list)


def run_batch(input_path: str | Path, out_dir: str | Path, *, config: RunConfig,
              options: BatchConfig = BatchConfig(), reporter: ProgressReporter | None = None,
              analyser: CaseAnalyser | None = None, allowed_roots: Sequence[str | Path] = ()) -> BatchResult:
    """Analyse every case under ``input_path`` into ``out_dir``; skip the unchanged ones.

    Writes ``out_dir/<case id>/report.{json,html}`` + ``.fingerprint``, ``summary.parquet``,
    ``summary.csv`` and appends to ``run.log``. A failed case is listed and the
    others go on; ``BatchError`` is raised only when the batch itself cannot run.
    ``analyser`` lends already-loaded models to the single-process local engine
    (notebooks, tests); other engines load their own in each worker. Documents are read
    from inside their case folder, the folder of a manifest table, or ``allowed_roots``.
    """
    options.validate()
    if analyser is not None and analyser.config != config:
        raise BatchError(Errors.E114, detail="the analyser was built for another RunConfig")
    started = time.perf_counter()
    if not Path(input_path).exists():  # before creating the output folder for nothing
        raise BatchError(Errors.E113, path=input_path)
    out_dir = Path(out_dir)
    prepare_out_dir(out_dir)
    run_id = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with exclusive(out_dir):
        remove_stale_temps(out_dir)
        case_dirs, table_roots = find_input(input_path, out_dir=out_dir)
        roots = tuple(dict.fromkeys([*table_roots, *(Path(r).resolve() for r in allowed_roots)]))
        plan = _plan(case_dirs, out_dir, config=config, force=options.force, allowed_roots=roots)
        log = RunLog(out_dir / RUN_LOG_NAME)
        try:
            outcomes, stopped = _execute(plan, out_dir, log=log, run_id=run_id, config=config, options=options,
                                         reporter=reporter, analyser=analyser, allowed_roots=roots)
        finally:
            log.close()
        frame = write_summary(out_dir, [o.case_id for o in outcomes if o.status in ("ok", "skipped")])
    outcomes.sort(key=lambda o: o.case_id)
    return BatchResult(out_dir=out_dir, outcomes=outcomes, seconds=time.perf_counter() - started,
                       divergences=len(frame), stopped_early=stopped)


def _plan(case_dirs: Sequence[Path], out_dir: Path, *, config: RunConfig, force: bool,
          allowed_roots: Sequence[Path]) -> _Plan:
    """Hash every case's inputs: a case that fails its checks or is unchanged is settled here."""
    environment = environment_fingerprint(config, model_versions(config))
    plan = _Plan(total=len(case_dirs))
    owner: dict[str, str] = {}
    for case_dir in case_dirs:
        t0 = time.perf_counter()
        try:
            case, digest, size = case_inputs(case_dir, max_doc_mb=config.max_doc_mb, allowed_roots=allowed_roots)
        except CaseError as err:
            plan.prechecked.append(CaseOutcome(case_dir.name, str(case_dir), "failed", time.perf_counter() - t0,
                                               error=str(err)))
            continue
        if case.id in owner:
            err = CaseError(Errors.E111, path=case_dir / MANIFEST_NAME, case_id=case.id, other=owner[case.id])
            plan.prechecked.append(CaseOutcome(case.id, str(case_dir), "failed", time.perf_counter() - t0, error=str(err)))
            continue
        owner[case.id] = str(case_dir)
        fingerprint = case_fingerprint(digest, environment)
        if not force and is_current(out_dir / case.id, fingerprint):
            plan.prechecked.append(CaseOutcome(case.id, str(case_dir), "skipped", time.perf_counter() - t0,
                                               fingerprint=fingerprint, documents=len(case.documents)))
        else:
            plan.jobs.append(Job(case.id, str(case_dir), fingerprint, size))
    plan.jobs.sort(key=lambda j: (-j.size, j.case_id))  # largest first: the last worker idles least
    return plan


def _execute(plan: _Plan, out_dir: Path, *, log: RunLog, run_id: str, config: RunConfig, options: BatchConfig,
             reporter: ProgressReporter | None, analyser: CaseAnalyser | None,
             allowed_roots: Sequence[Path]) -> tuple[list[CaseOutcome], bool]:
    """Log the settled cases, run the jobs on the engine and commit each finished case.
    Returns the outcomes (report text dropped) and whether ``--fail-fast`` stopped the batch."""
    outcomes: list[CaseOutcome] = []
    if reporter is not None:
        reporter.start(plan.total, plan.prechecked)
    try:
        for outcome in plan.prechecked:
            log.write(outcome.log_entry(run_id))
            outcomes.append(outcome)
        stopped = options.fail_fast and any(o.status == "failed" for o in plan.prechecked)
        if not plan.jobs or stopped:
            return outcomes, stopped
        by_dir = {job.case_dir: job for job in plan.jobs}
        stream = engine_for(options.engine)(plan.jobs, config=config, options=options, analyser=analyser,
                                            allowed_roots=allowed_roots)
        try:
            for outcome in stream:
                if outcome.fatal:  # models cannot load: every case would fail the same way
                    raise BatchError(Errors.E117, detail=outcome.error or "unknown error")
                job = by_dir[outcome.case_dir]
                outcome.case_id = job.case_id
                if outcome.status == "ok":
                    commit_case(outcome, out_dir / job.case_id)
                outcome.report_json = outcome.report_html = None
                log.write(outcome.log_entry(run_id))
                outcomes.append(outcome)
                if reporter is not None:
                    reporter.update(outcome)
                if options.fail_fast and outcome.status == "failed":
                    return outcomes, True
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return outcomes, False
    finally:
        if reporter is not None:
            reporter.close()
