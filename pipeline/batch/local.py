"""The local engine: the cases of a batch in this process or in a pool of worker processes.

Each worker process builds one ``CaseAnalyser`` (the models load once per process) and
sends back each case's report text; workers end with the driver however it ends.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import CaseError, DivergenceError, Errors
from .config import BatchConfig, CaseOutcome, Job
from .worker import CaseAnalyser

# process-pool worker state: one CaseAnalyser per process, built by the initializer
_ANALYSER: CaseAnalyser | None = None
_ANALYSER_ERROR: str | None = None


def _die_with_parent(parent: int) -> None:
    """Make this worker process end when the batch driver ends, however it ends.

    A driver killed with SIGKILL runs no cleanup, and pool workers that each hold a
    gigabyte of models would otherwise live on as orphans. On Linux the kernel sends the
    worker SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere a
    daemon thread also polls the parent's pid once a second as a fallback.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the driver died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="divergence-parent-watch", daemon=True).start()


def _init_worker(config: RunConfig, threads: int | None, parent: int | None = None) -> None:
    global _ANALYSER, _ANALYSER_ERROR
    if parent is not None:
        _die_with_parent(parent)
    try:
        _ANALYSER = CaseAnalyser(config, threads=threads)
    except DivergenceError as err:
        _ANALYSER_ERROR = str(err)


def _analyse_in_worker(case_dir: str, allowed_roots: Sequence[str] = ()) -> CaseOutcome:
    if _ANALYSER is None:
        return CaseOutcome(Path(case_dir).name, case_dir, "failed", 0.0, error=_ANALYSER_ERROR, fatal=True)
    return _ANALYSER(case_dir, allowed_roots)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def local_engine(jobs: Sequence[Job], *, config: RunConfig, options: BatchConfig,
                  analyser: CaseAnalyser | None = None, allowed_roots: Sequence[Path] = ()) -> Iterator[CaseOutcome]:
    workers = min(options.workers, len(jobs))
    threads = options.threads_per_worker
    if threads is None and workers > 1:
        threads = max(1, available_cpus() // workers)  # N workers x default threads would oversubscribe
    roots = tuple(str(r) for r in allowed_roots)
    if workers == 1:  # in this process: no second copy of the models, plain tracebacks
        analyser = analyser or CaseAnalyser(config, threads=threads)
        for job in jobs:
            yield analyser(job.case_dir, roots)
        return

    import multiprocessing

    # spawn, not fork: forking a process that runs threads (tqdm, torch) can deadlock
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(config, threads, os.getpid()))
    finished = False
    try:
        with _signals_as_exit():
            futures = {pool.submit(_analyse_in_worker, job.case_dir, roots): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    error = CaseError(Errors.E112, path=job.case_dir,
                                      detail="a worker process died (killed, or out of memory)")
                    outcome = CaseOutcome(job.case_id, job.case_dir, "failed", 0.0, error=str(error))
                yield outcome
            finished = True
    finally:
        if not finished:  # stopped early (--fail-fast, a signal, an error): no case is worth waiting for
            _terminate_workers(pool)
        pool.shutdown(wait=finished, cancel_futures=True)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.terminate()
        except (OSError, ValueError, AttributeError):
            pass


@contextmanager
def _signals_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP raise ``SystemExit`` in the driver, so the pool's cleanup runs and the
    workers stop with it (SIGINT already raises ``KeyboardInterrupt``). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise SystemExit(128 + signum)

    wanted = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, exit_on) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
