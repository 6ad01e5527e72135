"""Labels out of the store: the rows `divergence train --labels` reads, as JSONL, CSV,
Parquet or a ``datasets`` folder, written atomically (``pipeline.files``).

A row is self-contained (claim texts included), so an export outlives the report
folders it was reviewed from. CSV cells that a spreadsheet would run as formulas are
neutralised on the way out and restored when the trainer reads them back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Errors, LabelError
from ..files import replace_dir, replace_file
from .records import Label

if TYPE_CHECKING:  # heavy imports, only needed when exporting
    import datasets
    import pandas as pd

EXPORT_FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet", "dataset")
EXPORT_COLUMNS: tuple[str, ...] = (
    "premise",
    "hypothesis",
    "type",
    "predicted_type",
    "decision",
    "case_id",
    "divergence_id",
    "claim_id_a",
    "claim_id_b",
    "doc_id_a",
    "doc_id_b",
    "side_a",
    "side_b",
    "topic",
    "reviewer",
    "time",
)
# a spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...))
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a leading ``'`` before a formula prefix (OWASP).
    ``unneutralise_formula`` undoes it when the CSV is read back for training."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def unneutralise_formula(value: object) -> object:
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
    return value



def export_frame(labels: Sequence[Label]) -> "pd.DataFrame":
    """Labelled claim pairs, one row per label, columns ``EXPORT_COLUMNS``.

    Omissions have the claim as ``premise`` and an empty ``hypothesis``; rejected
    flags have ``type`` None (trainers skip rows without a type).
    """
    import pandas as pd

    frame = pd.DataFrame([export_row(label) for label in labels], columns=list(EXPORT_COLUMNS))
    return frame.astype("string")  # typed even when empty or all-null, for Parquet/Arrow


def export_dataset(labels: Sequence[Label]) -> "datasets.Dataset":
    import datasets

    features = datasets.Features({c: datasets.Value("string") for c in EXPORT_COLUMNS})
    rows = [export_row(label) for label in labels]
    return datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in EXPORT_COLUMNS}, features=features)


def write_export(labels: Sequence[Label], out: str | Path, *, format: str) -> tuple[Path, int]:
    """Write ``labels`` to ``out`` (a file, or a folder for ``dataset``) atomically; return (path, rows)."""
    if format not in EXPORT_FORMATS:
        raise LabelError(Errors.E095, detail=f"unknown format {format!r} (use {', '.join(EXPORT_FORMATS)})")
    out = Path(out)
    if format == "dataset":
        if out.exists() and not out.is_dir():
            raise LabelError(Errors.E095, path=out, detail="is a file; dataset export writes a folder")
        dataset = export_dataset(labels)
        replace_dir(out, lambda tmp: dataset.save_to_disk(str(tmp)))
        return out, len(dataset)
    if out.is_dir():
        raise LabelError(Errors.E095, path=out, detail=f"is a folder; {format} export writes a file")
    frame = export_frame(labels)
    writers: dict[str, Callable[[Path], object]] = {
        "jsonl": lambda tmp: frame.to_json(tmp, orient="records", lines=True, force_ascii=False),
        "csv": lambda tmp: frame.map(neutralise_formula).to_csv(tmp, index=False),
        "parquet": lambda tmp: frame.to_parquet(tmp, index=False),
    }
    replace_file(out, writers[format])
    return out, len(frame)


def export_row(label: Label) -> dict[str, Any]:
    a = label.claims[0]
    b = label.claims[1] if len(label.claims) > 1 else None
    return {
        "premise": a.text,
        "hypothesis": b.text if b else "",
        "type": label.type,
        "predicted_type": label.predicted_type,
        "decision": label.decision,
        "case_id": label.case_id,
        "divergence_id": label.divergence_id,
        "claim_id_a": a.id,
        "claim_id_b": b.id if b else None,
        "doc_id_a": a.doc_id,
        "doc_id_b": b.doc_id if b else None,
        "side_a": a.side,
        "side_b": b.side if b else None,
        "topic": label.topic,
        "reviewer": label.reviewer,
        "time": label.time,
    }
