"""Reviewers' labels: what a label is, where labels are kept, how they leave for training.

- ``records``: ``Label`` (one verdict on one flag, or a flag the pipeline missed) and its rules;
- ``store``: ``LabelStore``, one SQLite file per project with every change kept in a history;
- ``export``: the rows ``divergence train --labels`` reads, as JSONL, CSV, Parquet or a
  ``datasets`` folder.

A label stores the claim texts it was given, so the export is self-contained: it does not
need the report folders, which may be regenerated.
"""

from .export import (
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    FORMULA_PREFIXES,
    export_dataset,
    export_frame,
    neutralise_formula,
    unneutralise_formula,
    write_export,
)
from .records import (
    DECISIONS,
    FLAG_DECISIONS,
    LABEL_TYPES,
    MAX_REVIEWER_LEN,
    ClaimRef,
    HistoryEntry,
    Label,
    flag_key,
    label_text,
    missed_key,
    printable,
    reviewer_problem,
)
from .store import DB_ENV, DEFAULT_DB_NAME, MIGRATIONS, LabelStore, Migration, default_db_path

__all__ = [
    "DB_ENV", "DECISIONS", "DEFAULT_DB_NAME", "EXPORT_COLUMNS", "EXPORT_FORMATS", "FLAG_DECISIONS",
    "FORMULA_PREFIXES", "LABEL_TYPES", "MAX_REVIEWER_LEN", "MIGRATIONS", "ClaimRef", "HistoryEntry", "Label",
    "LabelStore", "Migration", "default_db_path", "export_dataset", "export_frame", "flag_key", "label_text", "missed_key",
    "neutralise_formula", "printable", "reviewer_problem", "unneutralise_formula", "write_export",
]
