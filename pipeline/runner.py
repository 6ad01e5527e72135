"""Wiring the stages together: one case folder in, one report out.

``Models`` holds everything expensive (spaCy pipeline, encoder, pair classifier)
so a batch worker loads it once and calls ``analyse_case`` for many cases.
``prepare_case`` runs the stages up to the judge (scorers and judge training reuse it);
``judge_case`` makes the :class:`~pipeline.report.Report`, which
``pipeline.render.write_report`` writes (report.json and report.html, atomically).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .config import RunConfig
from .errors import CaseError, ModelError, Warnings, warning_text
from .manifest import load_manifest
from .models import Encoder, build_nlp
from .report import (
    ModelVersions,
    Report,
    ReportCase,
    ReportClaim,
    ReportConfig,
    ReportDivergence,
    ReportDocument,
    ReportSummary,
    SetAside,
    Skipped,
)
from .schema import DIVERGENCE_TYPES, SCHEMA_VERSION
from .stages.align import AlignConfig, Alignment, align_claims
from .stages.claims import extract_claims
from .stages.divergence import DivergenceConfig, finalise, find_omissions, nli_probabilities, type_pairs
from .stages.ingest import ReadOptions, read_case
from .stages.relevance import assess_relevance


@dataclass
class Models:
    config: RunConfig
    nlp: Any
    encoder: Encoder
    scorer: Any | None  # pipeline.stages.classifier.PairClassifier
    warnings: list[str] = field(default_factory=list)
    judge: Any | None = None  # pipeline.stages.judge.Judge; None: the hand rules decide

    @classmethod
    def load(cls, config: RunConfig) -> "Models":
        nlp = build_nlp(config)
        encoder = Encoder.load(config.encoder)
        scorer, warnings = None, []
        if config.classifier.lower() != "none":
            from .stages.classifier import PairClassifier

            try:
                scorer = PairClassifier.load(config.classifier, models_dir=Path(config.models_dir),
                                             precision=config.classifier_precision)
            except ModelError as err:
                if config.classifier != "default" or err.code == "E059":
                    raise  # a model or a runtime the user asked for explicitly must exist
                warnings.append(warning_text(Warnings.W003, detail=err.problem))
        judge = None
        if config.judge.lower() != "none":
            from .stages.judge import Judge

            try:
                judge = Judge.load(config.judge, models_dir=Path(config.models_dir))
            except ModelError as err:
                if config.judge != "default":
                    raise
                warnings.append(warning_text(Warnings.W003, detail=err.problem))
            trained = (judge.meta.get("classifier") if judge else None) or "none"
            if judge is not None and scorer is None and trained != "none":
                # out of its training distribution, the judge would guess; the rules do not need a classifier
                warnings.append(warning_text(Warnings.W005, judge=judge.version))
                judge = None
            elif judge is not None and scorer is not None and trained not in {"none", scorer.version}:
                warnings.append(warning_text(Warnings.W006, judge=judge.version, trained=trained, loaded=scorer.version))
        return cls(config=config, nlp=nlp, encoder=encoder, scorer=scorer, warnings=warnings, judge=judge)

    @classmethod
    def cached(cls, config: RunConfig) -> "Models":
        """One ``Models`` per configuration per process (CLI calls in tests, batch workers)."""
        return _cached_models(config)

    def versions(self) -> dict[str, str]:
        from .registry import model_versions

        return model_versions(self.config, spacy_meta=self.nlp.meta, encoder=self.encoder.name,
                              classifier=getattr(self.scorer, "version", "none") if self.scorer else "none",
                              judge=self.judge.version if self.judge else "none")


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


@dataclass
class CaseAnalysis:
    """A case up to the judgement: what every stage before the judge produced. Scorers and
    judge training reuse it to judge the same candidates many times."""

    case: Any  # CaseSpec
    documents: list
    errors: list
    claims: list
    alignment: Alignment
    vectors: Any  # the claims' sentence embeddings (L2-normalised), one row per claim
    probs: tuple | None  # the pair classifier's (forward, backward) probabilities per aligned pair
    relevance: Any  # relevance.Relevance: the claims set aside as off-topic
    timer: _Timer


def prepare_case(case_dir: str | Path, *, config: RunConfig, models: Models, strict: bool = False,
                 allowed_roots: tuple[Path, ...] = ()) -> CaseAnalysis:
    """Ingest, claims, encoder, alignment and the pair classifier on a case folder.

    Bad manifests raise ``CaseError``. A bad document is skipped and listed under
    ``skipped`` (or raised when ``strict``), so it never costs the others' results.
    Documents are read from inside the case folder or ``allowed_roots`` only.
    """
    timer = _Timer()
    with timer.stage("ingest"):
        case = load_manifest(case_dir)
        documents, errors = read_case(case, options=ReadOptions(max_doc_mb=config.max_doc_mb,
                                                                allowed_roots=tuple(allowed_roots)))
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
    with timer.stage("classifier"):
        probs = nli_probabilities({c.id: c for c in claims}, alignment.pairs, models.scorer, config.batch_size)
    return CaseAnalysis(case=case, documents=documents, errors=errors, claims=claims, alignment=alignment,
                        vectors=vectors, probs=probs, relevance=relevance, timer=timer)


def judge_case(analysis: CaseAnalysis, *, config: RunConfig, models: Models, judge: Any = "models") -> Report:
    """The judgement and the report (CONTRACTS §3). ``judge``: the models' judge unless
    another one (or None for the hand rules) is given."""
    judge = models.judge if judge == "models" else judge
    case, documents, claims, alignment = analysis.case, analysis.documents, analysis.claims, analysis.alignment
    with analysis.timer.stage("divergence"):
        typed = type_pairs({c.id: c for c in claims}, alignment, scorer=models.scorer, config=DivergenceConfig(),
                           batch_size=config.batch_size, judge=judge, probs=analysis.probs)
        omissions = find_omissions(claims, alignment, parties=case.parties, flagged=typed, judge=judge)
        omissions = [o for o in omissions if not analysis.relevance.is_set_aside(o.claims[0])]
        divergences = finalise(typed + omissions)

    used_topics = {d.topic for d in divergences} | set(alignment.topic_of.values())
    versions = models.versions()
    versions["judge"] = judge.version if judge is not None else "none"
    # the records' to_json shapes, checked once by the model (and written back key for key)
    return Report(
        schema_version=SCHEMA_VERSION,
        case=ReportCase(id=case.id, title=case.title, date=case.date),
        documents=[ReportDocument.model_validate(d.to_json(include_text=True)) for d in documents],
        claims=[ReportClaim.model_validate(c.to_json()) for c in claims],
        divergences=[ReportDivergence.model_validate(d.to_json()) for d in divergences],
        topics={t: alignment.topic_names[t] for t in sorted(used_topics, key=lambda t: int(t[1:]))},
        claim_topics=alignment.topic_of,
        summary=ReportSummary(documents=len(documents), claims=len(claims), divergences=len(divergences),
                              aligned_pairs=len(alignment.pairs),
                              by_type={t: sum(1 for d in divergences if d.type == t) for t in DIVERGENCE_TYPES}),
        set_aside=SetAside.model_validate(analysis.relevance.to_json(claims)),
        skipped=[Skipped(path=_relative(e.path, case.root), error=f"{_relative(e.path, case.root)}: {e.problem} [{e.code}]")
                 for e in analysis.errors],
        warnings=list(models.warnings) + [w for d in documents for w in d.warnings],
        models=ModelVersions(**versions),
        config=ReportConfig(claim_threshold=config.claim_threshold, top_k=config.top_k,
                            min_similarity=config.min_similarity),
        timings={k: round(v, 3) for k, v in analysis.timer.seconds.items()},
    )


def analyse_case(case_dir: str | Path, *, config: RunConfig, models: Models,
                 strict: bool = False, allowed_roots: tuple[Path, ...] = ()) -> Report:
    """Run every stage on a case folder and return the report (CONTRACTS §3)."""
    return judge_case(prepare_case(case_dir, config=config, models=models, strict=strict,
                                   allowed_roots=allowed_roots), config=config, models=models)


def _relative(path: str | None, root: Path) -> str | None:
    """Paths in the report are relative to the case folder, so it does not change when the folder moves."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


def default_out_dir(case_dir: str | Path) -> Path:
    case = load_manifest(case_dir)
    return Path("reports") / case.id


__all__ = ["CaseAnalysis", "Models", "Report", "analyse_case", "judge_case", "prepare_case", "default_out_dir", "CaseError"]
