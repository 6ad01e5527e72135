"""The one-case step every engine runs: loaded models in, one case's report text out.

``CaseAnalyser`` returns the rendered report (JSON and HTML text) instead of writing it,
so the driver is the only writer whatever the engine: both engines give byte-identical
outputs, and the nodes of a Ray cluster need no shared output volume (they do need to
read the inputs).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RunConfig
from ..errors import CaseError, DivergenceError, Errors
from .config import CaseOutcome
from .fingerprints import case_fingerprint, case_inputs, environment_fingerprint

if TYPE_CHECKING:
    from ..runner import Models


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


class CaseAnalyser:
    """Loaded models plus the one-case step; one per worker process or Ray actor.

    Returns the rendered report (JSON and HTML text) instead of writing it, so the
    driver is the only writer whatever the engine.
    """

    def __init__(self, config: RunConfig, *, models: Models | None = None, threads: int | None = None) -> None:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
            if threads == 1:
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from ..runner import Models

        self.config = config
        self.models = models if models is not None else Models.cached(config)
        self.environment = environment_fingerprint(config, self.models.versions())

    def __call__(self, case_dir: str, allowed_roots: Sequence[str | Path] = ()) -> CaseOutcome:
        from ..render import render_report_html
        from ..runner import analyse_case

        start = time.perf_counter()
        case_id = Path(case_dir).name
        roots = tuple(Path(r) for r in allowed_roots)
        try:
            # hashed before reading: a document edited mid-analysis then fails the next
            # run's check instead of being skipped with a stale report
            case, digest, _ = case_inputs(case_dir, max_doc_mb=self.config.max_doc_mb, allowed_roots=roots)
            case_id = case.id
            report = analyse_case(case_dir, config=self.config, models=self.models, allowed_roots=roots)
            html = render_report_html(report)
            body = report.dumps()
        except DivergenceError as err:
            return CaseOutcome(case_id, case_dir, "failed", time.perf_counter() - start, error=str(err),
                               worker_rss_mb=_peak_rss_mb())
        except Exception as err:  # noqa: BLE001 - one case's bug must not cost the others
            error = CaseError(Errors.E112, path=case_dir, detail=f"{type(err).__name__}: {err}".splitlines()[0][:300])
            return CaseOutcome(case_id, case_dir, "failed", time.perf_counter() - start, error=str(error),
                               worker_rss_mb=_peak_rss_mb())
        words = sum(len((d.text or "").split()) for d in report.documents)
        return CaseOutcome(case_id, case_dir, "ok", time.perf_counter() - start,
                           fingerprint=case_fingerprint(digest, self.environment), report_json=body,
                           report_html=html, documents=len(report.documents), words=words,
                           worker_rss_mb=_peak_rss_mb())
