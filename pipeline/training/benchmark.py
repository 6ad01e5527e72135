"""Measure the divergence judge on gold events, leave-one-event-out (CONTRACTS §4c).

Every event is prepared once (:func:`prepare_events`); then, for each event, a judge
fitted on all the *other* events (:func:`leave_one_event_out`) judges it, and its report
is scored by the event scorer (:func:`pipeline.scoring.event_score.score_report`).
The figure that counts is the mean over events (:func:`summarise`). ``benchmark`` also
scores a fixed judge or the hand rules the same way. It fits judges, so it lives on the
training side: scoring never imports training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..config import RunConfig
from ..scoring.event_score import score_report
from ..scoring.metrics import roc_auc
from ..stages.judge import PAIR_FEATURES, Judge
from .edits import synthetic_rows
from .events import EventData, find_events, prepare_event
from .judge_fit import FitConfig, budgeted_recall, fit_judge


def prepare_events(paths: Iterable[str | Path], *, work_dir: Path, config: RunConfig, models: Any,
                   progress: Any = None, synthetic: bool = False) -> list[EventData]:
    """Every event prepared once (and, for fitting, its edited-claim pairs made)."""
    import time

    events = []
    for source in find_events(paths):
        ev = prepare_event(source, work_dir=Path(work_dir), config=config, models=models)
        if synthetic:
            started = time.perf_counter()
            ev.synthetic = synthetic_rows(ev, work_dir=Path(work_dir), config=config, models=models)
            ev.seconds += time.perf_counter() - started
        if progress:
            progress(f"{ev.event.id}: {len(ev.analysis.claims)} claims, {len(ev.contexts)} candidate pairs"
                     + (f", {len(ev.synthetic)} edited pairs" if synthetic else "") + f" ({ev.seconds:.1f}s)")
        events.append(ev)
    return events


def score_event(ev: EventData, judge: Judge | None, *, config: RunConfig, models: Any) -> dict[str, Any]:
    """Judge one prepared event, write nothing, and score the report as the event scorer does."""
    from ..runner import judge_case

    report = judge_case(ev.analysis, config=config, models=models, judge=judge)
    score = score_report(ev.event, ev.case, report)
    row: dict[str, Any] = {"event": ev.event.id, "kind": ev.kind, **score.metrics()}
    if judge is not None:
        # every gold pair speaks of one matter: what tells them apart is P(part | same matter)
        div = [float(judge.parts.predict_proba(x[None])[0, 1]) for i, x in ev.gold_pairs.items()
               if i in ev.divergence_ids]
        agr = [float(judge.parts.predict_proba(x[None])[0, 1]) for i, x in ev.gold_pairs.items()
               if i in ev.agreement_ids]
    else:  # the rules' judge: the classifier's contradiction, as before judges existed
        idx = PAIR_FEATURES.index("nli_contradiction_max")
        div = [float(x[idx]) for i, x in ev.gold_pairs.items() if i in ev.divergence_ids]
        agr = [float(x[idx]) for i, x in ev.gold_pairs.items() if i in ev.agreement_ids]
    row["auc"] = roc_auc(div, agr)
    row["auc_pairs"] = [len(div), len(agr)]
    row["_scores"] = (div, agr)
    row["items"] = [{"id": r.id, "gold_type": r.gold_type, "found": r.found, "report_type": r.report_type,
                     "score": r.report_score} for r in score.items]
    return row


METRICS = ("recall", "recall_flagged", "type_accuracy", "agreement_recall", "unmatched_per_gold_divergence", "auc")


def leave_one_event_out(events: Sequence[EventData], *, config: RunConfig, models: Any,
                        fit: FitConfig = FitConfig()) -> list[dict[str, Any]]:
    """Each event judged by a judge fitted on all the others."""
    rows = []
    for n, ev in enumerate(events):
        judge = fit_judge([e for m, e in enumerate(events) if m != n], version=f"loeo-{ev.event.id}", config=fit)
        row = score_event(ev, judge, config=config, models=models)
        row["thresholds"] = judge.thresholds
        rows.append(row)
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Macro means per metric (AUC also pooled over every event's gold pairs)."""
    out: dict[str, Any] = {}
    for m in METRICS:
        values = [r[m] for r in rows if r.get(m) is not None]
        out[m] = round(float(np.mean(values)), 4) if values else None
    pos = [s for r in rows for s in r["_scores"][0]]
    neg = [s for r in rows for s in r["_scores"][1]]
    pooled = roc_auc(pos, neg)
    out["auc_pooled"] = round(pooled, 4) if pooled is not None else None
    out["events"] = len(rows)
    return out


def summarise_by_kind(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """:func:`summarise` of the paraphrased and the real events apart."""
    return {k: summarise([r for r in rows if r["kind"] == k]) for k in sorted({r["kind"] for r in rows})}


def public_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without their working fields (``_scores``), as written to JSON."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def benchmark(paths: Iterable[str | Path], *, mode: str, config: RunConfig, models: Any, work_dir: Path,
              progress: Any = None, fit: FitConfig = FitConfig()) -> dict[str, Any]:
    """Every event run and scored: ``loeo`` (a judge fitted without the event), ``fixed``
    (the models' judge) or ``rules`` (no judge). Returns rows and macro means, per kind too."""
    events = prepare_events(paths, work_dir=work_dir, config=config, models=models, progress=progress,
                            synthetic=mode == "loeo" and fit.synthetic_weight > 0)
    if mode == "loeo":
        rows = leave_one_event_out(events, config=config, models=models, fit=fit)
    else:
        judge = models.judge if mode == "fixed" else None
        rows = [score_event(ev, judge, config=config, models=models) for ev in events]
    return {"mode": mode, "judge": getattr(models.judge, "version", None) if mode == "fixed" else mode,
            "classifier": getattr(models.scorer, "version", "none") if models.scorer else "none",
            "events": public_rows(rows), "mean": summarise(rows), "mean_by_kind": summarise_by_kind(rows)}


def format_table(result: dict[str, Any]) -> str:
    head = (f"{'event':<30} {'kind':<11} {'gold':>4} {'recall':>6} {'flagged':>7} {'type':>5} {'agree':>5} "
            f"{'unmatch/g':>9} {'auc':>5}")
    lines = [f"mode {result['mode']}  classifier {result['classifier']}", head, "-" * len(head)]

    def fmt(x: Any, w: int) -> str:
        return f"{x:>{w}.2f}" if isinstance(x, (int, float)) and x is not None else f"{'-':>{w}}"

    for r in result["events"]:
        lines.append(f"{r['event']:<30} {r['kind']:<11} {r['gold_divergences']:>4} {fmt(r['recall'], 6)} "
                     f"{fmt(r['recall_flagged'], 7)} {fmt(r['type_accuracy'], 5)} {fmt(r['agreement_recall'], 5)} "
                     f"{fmt(r['unmatched_per_gold_divergence'], 9)} {fmt(r['auc'], 5)}")
    lines.append("-" * len(head))
    for name, m in [("MEAN (all events)", result["mean"])] + [
            (f"mean ({k})", v) for k, v in result.get("mean_by_kind", {}).items()]:
        lines.append(f"{name:<42} {fmt(m['recall'], 6)} {fmt(m['recall_flagged'], 7)} {fmt(m['type_accuracy'], 5)} "
                     f"{fmt(m['agreement_recall'], 5)} {fmt(m['unmatched_per_gold_divergence'], 9)} "
                     f"{fmt(m['auc'], 5)}")
    lines.append(f"pooled AUC over all gold pairs: {result['mean'].get('auc_pooled')}")
    return "\n".join(lines)


def objective(mean: dict[str, Any], *, budget: float = FitConfig.unmatched_budget) -> float:
    """One number for gating: the LOEO mean recall within the thresholds' flag budget."""
    return budgeted_recall(float(mean.get("recall") or 0.0), float(mean.get("unmatched_per_gold_divergence") or 0.0),
                           budget)

