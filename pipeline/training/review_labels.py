"""Reviewers' labels as extra judge training pairs.

Each label (an export of the review app: ``case_id``, ``claim_id_a``, ``claim_id_b``,
``decision``, ``type``) names a flag of a report. The pair is rebuilt from that report's
claims (frames included), its cosine re-encoded and the classifier run in both
directions. Accepted or corrected flags are divergences of their (corrected) type, or
agreements; rejected flags are pairs that do not part. Omissions (one claim) are skipped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, Errors
from ..schema import Claim, Entity, Frame
from ..stages.judge import PAIR_TYPES
from .events import pair_feature_rows

logger = logging.getLogger(__name__)

LABEL_COLUMNS = {"case_id", "claim_id_a", "claim_id_b", "decision", "type"}


def _read_labels(labels: Path) -> Any:
    """The label table (parquet, JSON lines or CSV) as a pandas DataFrame."""
    import pandas as pd

    try:
        frame = (pd.read_parquet(labels) if labels.suffix == ".parquet" else
                 pd.read_json(labels, lines=True) if labels.suffix == ".jsonl" else pd.read_csv(labels))
    except (OSError, ValueError) as err:
        raise DataError(Errors.E101, path=labels, detail=str(err)) from None
    if missing := LABEL_COLUMNS - set(frame.columns):
        raise DataError(Errors.E101, path=labels, detail=f"missing columns {sorted(missing)}")
    return frame


def _report_claims(path: Path) -> tuple[dict[str, Claim], list[tuple[str, str]]]:
    """The claims of a stored report by id, and its two-claim divergences (empty when unreadable)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        logger.warning("%s: report not found; its labels are skipped", path)
        return {}, []
    claims = {c["id"]: Claim(
        id=c["id"], doc_id=c["doc_id"], side=c["side"], claimer=c.get("claimer") or "", text=c["text"],
        start=c["start"], end=c["end"], score=float(c.get("score") or 0.5),
        entities=[Entity(**e) for e in c.get("entities") or []],
        frame=Frame(**(c.get("frame") or {})), reported=bool(c.get("reported")))
        for c in raw.get("claims") or []}
    pairs = [tuple(d["claims"][:2]) for d in raw.get("divergences") or [] if len(d.get("claims") or []) == 2]
    return claims, pairs


def _label_of(decision: str, typ: str | None) -> tuple[str, str | None] | None:
    """(label, type) of a reviewer's decision on a flag; None when it teaches nothing."""
    if decision == "rejected":
        return "other", None
    if typ == "agreement":
        return "agreement", None
    if typ in PAIR_TYPES:
        return "divergence", typ
    return None


def label_rows(labels: Path, *, reports: Path | None, models: Any) -> list[tuple[np.ndarray, str, str | None]]:
    """(features, "divergence" | "agreement" | "other", type) of each usable label; the
    reports are read from ``reports/<case_id>/report.json`` (default ``reports/``)."""
    from ..schema import AlignedPair
    from ..stages.align import Alignment
    from ..stages.divergence import ContextBuilder

    frame = _read_labels(labels)
    stored: dict[str, tuple[dict[str, Claim], list[tuple[str, str]]]] = {}
    pending: list[tuple[Claim, Claim, str, str | None, str]] = []
    for row in frame.itertuples():
        if not isinstance(row.claim_id_b, str) or not row.claim_id_b:
            continue  # omissions: one claim, no pair
        case_id = str(row.case_id)
        if case_id not in stored:
            stored[case_id] = _report_claims(Path(reports or "reports") / case_id / "report.json")
        claims = stored[case_id][0]
        a, b = claims.get(str(row.claim_id_a)), claims.get(str(row.claim_id_b))
        labelled = _label_of(str(row.decision), str(row.type) if isinstance(row.type, str) else None)
        if a is not None and b is not None and labelled is not None:
            pending.append((a, b, *labelled, case_id))
    if not pending:
        return []
    vectors = models.encoder.encode([t for a, b, _, _, _ in pending for t in (a.text, b.text)])
    cosines = [float(vectors[2 * n] @ vectors[2 * n + 1]) for n in range(len(pending))]
    builders: dict[str, ContextBuilder] = {}
    for (a, b, _, _, case_id), cos in zip(pending, cosines):
        if case_id not in builders:  # the report's pairs stand in for its alignment
            pairs = [AlignedPair(a=x, b=y, similarity=cos) for x, y in stored[case_id][1]]
            builders[case_id] = ContextBuilder(list(stored[case_id][0].values()),
                                               Alignment(pairs=pairs, topic_of={}, topic_names={}))
    features = pair_feature_rows([(builders[case_id], a, b, cos) for (a, b, _, _, case_id), cos in zip(pending, cosines)],
                                 models.scorer, rank=1)
    return [(x, label, typ) for x, (_, _, label, typ, _) in zip(features, pending)]
