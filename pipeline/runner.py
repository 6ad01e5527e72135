"""Wiring the stages together: one case folder in, one report out.

``Models`` holds everything expensive (spaCy pipeline, encoder, pair classifier)
so a batch worker loads it once and calls ``analyse_case`` for many cases.
``run_case`` adds the file side: both outputs are rendered in memory and only
then moved into place, so a crash never leaves a half-written report.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .align import AlignConfig, align_claims
from .claims import extract_claims
from .config import RunConfig
from .divergence import DivergenceConfig, find_omissions, finalise, type_pairs
from .errors import CaseError, ModelError, Warnings, warning_text
from .ingest import ReadOptions, read_case
from .io import atomic_write
from .manifest import load_manifest
from .relevance import assess_relevance
from .models import Encoder, build_nlp
from .schema import DIVERGENCE_TYPES, SCHEMA_VERSION


@dataclass
class Models:
    config: RunConfig
    nlp: Any
    encoder: Encoder
    scorer: Any | None  # pipeline.classifier.PairClassifier
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, config: RunConfig) -> "Models":
        nlp = build_nlp(config)
        encoder = Encoder.load(config.encoder)
        scorer, warnings = None, []
        if config.classifier.lower() != "none":
            from .classifier import PairClassifier

            try:
                scorer = PairClassifier.load(config.classifier, models_dir=Path(config.models_dir),
                                             precision=config.classifier_precision)
            except ModelError as err:
                if config.classifier != "default" or err.code == "E059":
                    raise  # a model or a runtime the user asked for explicitly must exist
                warnings.append(warning_text(Warnings.W003, detail=err.problem))
        return cls(config=config, nlp=nlp, encoder=encoder, scorer=scorer, warnings=warnings)

    @classmethod
    def cached(cls, config: RunConfig) -> "Models":
        """One ``Models`` per configuration per process (CLI calls in tests, batch workers)."""
        return _cached_models(config)

    def versions(self) -> dict[str, str]:
        import spacy

        meta = self.nlp.meta
        return {
            "divergence": __version__,
            "spacy": spacy.__version__,
            "spacy_model": f"{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}",
            "encoder": self.encoder.name,
            "classifier": getattr(self.scorer, "version", "none") if self.scorer else "none",
        }


@lru_cache(maxsize=2)
def _cached_models(config: RunConfig) -> Models:
    return Models.load(config)


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def analyse_case(case_dir: str | Path, *, config: RunConfig, models: Models,
                 strict: bool = False) -> dict[str, Any]:
    """Run every stage on a case folder and return the report (CONTRACTS §3) as a dict.

    Bad manifests raise ``CaseError``. A bad document is skipped and listed under
    ``skipped`` (or raised when ``strict``), so it never costs the others' results.
    """
    timer = _Timer()
    with timer.stage("ingest"):
        case = load_manifest(case_dir)
        documents, errors = read_case(case, options=ReadOptions(max_doc_mb=config.max_doc_mb))
    if errors and strict:
        raise errors[0]
    # the parties still heard: sides of the remaining documents, plus the [sides] that a
    # remaining analyst's document can report
    reporting = any(d.spec.side not in case.parties for d in documents)
    sides_left = ({d.spec.side for d in documents} & set(case.parties)) | (set(case.sides) if reporting else set())
    if errors and len(sides_left) < 2:
        raise errors[0]
    with timer.stage("spacy"):
        claims = extract_claims(case, documents, nlp=models.nlp, threshold=config.claim_threshold,
                                batch_size=config.batch_size)
    with timer.stage("encoder"):
        vectors = models.encoder.encode([c.text for c in claims], batch_size=config.batch_size)
    with timer.stage("align"):
        alignment = align_claims(claims, vectors, parties=case.parties,
                                 config=AlignConfig(top_k=config.top_k, min_similarity=config.min_similarity))
    with timer.stage("relevance"):
        # claims far from everything the other sides say are off-topic, never omissions
        relevance = assess_relevance(claims, vectors, parties=case.parties,
                                     aligned={cid for p in alignment.pairs for cid in (p.a, p.b)})
    by_id = {c.id: c for c in claims}
    with timer.stage("classifier"):
        typed = type_pairs(by_id, alignment, scorer=models.scorer, config=DivergenceConfig(),
                           batch_size=config.batch_size)
    with timer.stage("divergence"):
        omissions = find_omissions(claims, alignment, parties=case.parties, flagged=typed)
        omissions = [o for o in omissions if not relevance.is_set_aside(o.claims[0])]
        divergences = finalise(typed + omissions)

    warnings = list(models.warnings) + [w for d in documents for w in d.warnings]
    used_topics = {d.topic for d in divergences} | set(alignment.topic_of.values())
    counts = {t: sum(1 for d in divergences if d.type == t) for t in DIVERGENCE_TYPES}
    return {
        "schema_version": SCHEMA_VERSION,
        "case": {"id": case.id, "title": case.title, "date": case.date},
        "documents": [d.to_json(include_text=True) for d in documents],
        "claims": [c.to_json() for c in claims],
        "divergences": [d.to_json() for d in divergences],
        "topics": {t: alignment.topic_names[t] for t in sorted(used_topics, key=lambda t: int(t[1:]))},
        "claim_topics": alignment.topic_of,
        "summary": {"documents": len(documents), "claims": len(claims), "divergences": len(divergences),
                    "aligned_pairs": len(alignment.pairs), "by_type": counts},
        "set_aside": relevance.to_json(claims),
        "skipped": [{"path": _relative(e.path, case.root), "error": f"{_relative(e.path, case.root)}: {e.problem} [{e.code}]"}
                    for e in errors],
        "warnings": warnings,
        "models": models.versions(),
        "config": {"claim_threshold": config.claim_threshold, "top_k": config.top_k,
                   "min_similarity": config.min_similarity},
        "timings": {k: round(v, 3) for k, v in timer.seconds.items()},
    }


def _relative(path: str | None, root: Path) -> str | None:
    """Paths in the report are relative to the case folder, so it does not change when the folder moves."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


def report_json(report: dict[str, Any]) -> str:
    # no timings in the file: reruns on unchanged input give byte-identical reports
    stable = {k: v for k, v in report.items() if k != "timings"}
    return json.dumps(stable, ensure_ascii=False, indent=1)


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    from .render import render_report_html

    html = render_report_html(report)  # rendered before anything is written
    body = report_json(report)
    atomic_write(out_dir / "report.html", html)
    atomic_write(out_dir / "report.json", body)
    return out_dir / "report.json"


def default_out_dir(case_dir: str | Path) -> Path:
    case = load_manifest(case_dir)
    return Path("reports") / case.id


__all__ = ["Models", "analyse_case", "write_report", "atomic_write", "default_out_dir", "CaseError"]
