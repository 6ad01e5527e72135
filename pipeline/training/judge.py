"""Train the divergence judge on gold events and write it as a registered version.

The recipe is measured leave-one-event-out (:mod:`pipeline.training.benchmark`, CONTRACTS
§4c), then a judge is fitted on every event (:mod:`pipeline.training.judge_fit`), plus
the reviewers' labels (:mod:`pipeline.training.review_labels`), and its folder written:
``judge.json`` (plain JSON, no pickle), ``metrics.json`` and a ``README.md`` model card.
It becomes the default when its leave-one-event-out objective is not below the default's.
Not imported by the runtime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from ..config import RunConfig
from ..stages.judge import Judge
from .benchmark import leave_one_event_out, objective, prepare_events, public_rows, summarise, summarise_by_kind
from .judge_fit import FitConfig, fit_judge
from .review_labels import label_rows

__all__ = ["model_card", "train_judge"]


def train_judge(paths: Iterable[str | Path], *, version: str | None, config: RunConfig, models: Any,
                work_dir: Path, models_dir: Path, labels: Path | None = None, reports: Path | None = None,
                promote: str = "auto", progress: Any = None, fit: FitConfig = FitConfig()) -> dict[str, Any]:
    """Fit a judge on every event (+ labels), measure the recipe leave-one-event-out, write the
    version folder (judge.json, metrics.json, README.md model card) and register it."""
    from datetime import datetime, timezone

    from ..files import atomic_write
    from ..registry import default_judge, load_registry, register_judge

    events = prepare_events(paths, work_dir=work_dir, config=config, models=models, progress=progress,
                            synthetic=fit.synthetic_weight > 0)
    extra = label_rows(labels, reports=reports, models=models) if labels else []
    rows = leave_one_event_out(events, config=config, models=models, fit=fit)
    mean = summarise(rows)
    version = version or f"judge-{datetime.now(timezone.utc):%Y%m%d-%H%M}"
    judge = fit_judge(events, version=version, config=fit, extra=extra)
    judge.meta = {"events": [ev.event.id for ev in events], "labels": len(extra),
                  "classifier": getattr(models.scorer, "version", "none") if models.scorer else "none",
                  "encoder": models.encoder.name}
    folder = Path(models_dir) / version
    metrics = {"loeo_mean": mean, "objective": round(objective(mean), 4)}
    atomic_write(folder / "judge.json", json.dumps(judge.to_json(), indent=1))
    result = {"mode": "loeo", "classifier": judge.meta["classifier"], "events": public_rows(rows), "mean": mean,
              "mean_by_kind": summarise_by_kind(rows)}
    atomic_write(folder / "metrics.json", json.dumps(result, indent=1))
    atomic_write(folder / "README.md", model_card(judge, result, n_labels=len(extra)))
    current = default_judge(models_dir)
    current_entry = ((load_registry(models_dir).get("judge") or {}).get("versions") or {}).get(current or "", {})
    current_obj = (current_entry.get("metrics") or {}).get("objective")
    if promote == "always" or (promote == "auto" and (current_obj is None or metrics["objective"] >= current_obj)):
        promoted, reason = True, (f"objective {metrics['objective']:.3f} vs the default's "
                                  f"{current_obj if current_obj is not None else 'none'}")
    else:
        promoted, reason = False, ("--promote never" if promote == "never" else
                                   f"objective {metrics['objective']:.3f} below the default's {current_obj:.3f}")
    register_judge(version, metrics=metrics, promote_it=promoted, models_dir=models_dir)
    return {"version": version, "path": str(folder), "promoted": promoted, "reason": reason, "loeo": result}


def model_card(judge: Judge, result: dict[str, Any], *, n_labels: int) -> str:
    """The judge version's README.md: what it was fitted on and its leave-one-event-out figures."""
    m = result["mean"]
    lines = [f"# Divergence judge `{judge.version}`", "",
             "Logistic regressions over pair and omission features (see `pipeline/stages/judge.py`): "
             "P(the two claims speak of one matter and part), P(compatible accounts), the divergence type, "
             "and P(a party claim is left out by the other sides). Stored as plain JSON (no pickle).", "",
             "## Trained on", "",
             f"- Gold events (development data of this project, CONTRACTS §4/§4b): {', '.join(judge.meta['events'])}.",
             "  Paraphrased events are the project's own labelled data; real-event gold quotes official White House "
             "and Kremlin texts (public-domain US government works; Kremlin texts under CC BY 4.0) and is used as "
             "evaluation/development data only — the judge stores no text.",
             "- Edited claims of those events (a number changed, all/part swapped, a negation, a condition added, an "
             "actor swapped, or a meaning-preserving rewrite; `pipeline/datasets/corruption.py`), weighted "
             f"{FitConfig().synthetic_weight} in the parts model.",
             f"- Reviewers' labels: {n_labels} pairs." if n_labels else "- No reviewers' labels.",
             f"- Features come from the pair classifier `{judge.meta['classifier']}` (see its own card for its data and "
             f"licences) and the encoder `{judge.meta['encoder']}` (Apache-2.0).", "",
             "## Leave-one-event-out (each event judged by a judge fitted without it)", "",
             "| event | kind | recall | flagged | type acc | agreement | unmatched/gold | AUC |",
             "|---|---|---|---|---|---|---|---|"]
    f = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    for r in result["events"]:
        lines.append(f"| {r['event']} | {r['kind']} | {f(r['recall'])} | {f(r['recall_flagged'])} | "
                     f"{f(r['type_accuracy'])} | {f(r['agreement_recall'])} | "
                     f"{f(r['unmatched_per_gold_divergence'])} | {f(r['auc'])} |")
    lines.append(f"| **mean** | | {f(m['recall'])} | {f(m['recall_flagged'])} | {f(m['type_accuracy'])} | "
                 f"{f(m['agreement_recall'])} | {f(m['unmatched_per_gold_divergence'])} | {f(m['auc'])} |")
    lines += ["", f"Thresholds: {judge.thresholds}.", ""]
    return "\n".join(lines)

