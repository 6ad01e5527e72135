"""The Ray engine: the cases of a batch in Ray Data actors, on one machine or a cluster.

Each actor builds one ``CaseAnalyser`` and sends back each case's report text; only
the driver writes, so the outputs are byte-identical to the local engine's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import BatchError, DivergenceError, Errors
from .config import BatchConfig, CaseOutcome, Job
from .worker import CaseAnalyser

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DIVERGENCE_DATA")


class RayCaseAnalyser:
    """Ray Data callable class: ``map_batches`` builds one per actor, so models load once per actor."""

    def __init__(self, config: RunConfig, threads: int, env: dict[str, str], allowed_roots: Sequence[str] = ()) -> None:
        os.environ.update(env)  # e.g. the HF offline switches, which a cluster node lacks
        self.allowed_roots = tuple(allowed_roots)
        try:
            self.analyser: CaseAnalyser | None = CaseAnalyser(config, threads=threads)
            self.error = None
        except DivergenceError as err:
            self.analyser, self.error = None, str(err)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        outcomes = []
        for case_dir in batch["case_dir"]:
            case_dir = str(case_dir)
            if self.analyser is None:
                outcomes.append(CaseOutcome(Path(case_dir).name, case_dir, "failed", 0.0, error=self.error, fatal=True))
            else:
                outcomes.append(self.analyser(case_dir, self.allowed_roots))
        return {f.name: [getattr(o, f.name) for o in outcomes] for f in fields(CaseOutcome)}



def ray_engine(jobs: Sequence[Job], *, config: RunConfig, options: BatchConfig,
                analyser: CaseAnalyser | None = None, allowed_roots: Sequence[Path] = ()) -> Iterator[CaseOutcome]:
    try:
        import ray
        import ray.data
        import ray.exceptions
    except ImportError as err:
        raise BatchError(Errors.E116, detail=f"{err} (pip install 'ray[data]')") from None

    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                     logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise BatchError(Errors.E116, detail=str(err).splitlines()[0]) from None
        started = True
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the batch has its own
        threads = options.threads_per_worker or 1
        env = {k: os.environ[k] for k in _OFFLINE_VARS if k in os.environ}
        # one row per block: Ray hands blocks to actors, so one big block would serialise the batch
        dataset = ray.data.from_items([{"case_dir": job.case_dir} for job in jobs], override_num_blocks=len(jobs))
        results = dataset.map_batches(
            RayCaseAnalyser,
            fn_constructor_kwargs={"config": config, "threads": threads, "env": env,
                                   "allowed_roots": [str(r) for r in allowed_roots]},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(options.workers, len(jobs))),  # `concurrency=` before Ray 2.51
            num_cpus=threads,
        )
        try:
            for row in results.iter_rows():
                yield CaseOutcome(**{f.name: _plain(row[f.name]) for f in fields(CaseOutcome)})
        except ray.exceptions.RayError as err:  # an actor lost (node down, out of memory): finished cases are kept
            raise BatchError(Errors.E116, detail=f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}; "
                             "rerun to finish the remaining cases") from None
    finally:
        if started:
            ray.shutdown()


def _plain(value: Any) -> Any:
    # Arrow/NumPy scalars back to Python, NaN (a missing float) to None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
