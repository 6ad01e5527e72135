"""What a batch reads: a case folder, a folder of case folders, or a manifest table."""

from __future__ import annotations

from pathlib import Path

from ..errors import BatchError, CaseError, Errors
from ..manifest import MANIFEST_NAME
from .table import TABLE_NAMES, read_manifest_table, write_case_folders

CASES_DIR_NAME = "_cases"  # generated case folders for manifest-table input; not a valid case id
_DOCUMENT_SUFFIXES = {".txt", ".md", ".html", ".htm", ".json"}


def _looks_like_case(folder: Path) -> bool:
    """A case folder, or one with documents but no manifest (reported as a failed case);
    folders of other data (gazetteers, notes) are not cases."""
    if (folder / MANIFEST_NAME).is_file():
        return True
    return not any(folder.glob("*.jsonl")) and any(p.suffix.lower() in _DOCUMENT_SUFFIXES for p in folder.iterdir())


def find_cases(input_path: str | Path, *, out_dir: Path) -> list[Path]:
    """The case folders of a batch input (see ``find_input``)."""
    return find_input(input_path, out_dir=out_dir)[0]


def find_input(input_path: str | Path, *, out_dir: Path) -> tuple[list[Path], tuple[Path, ...]]:
    """The case folders of a batch input, and the folders their documents may be read from.

    ``input_path`` is a case folder, a folder of case folders, a folder holding
    ``manifest.csv``/``manifest.jsonl`` next to loose transcripts, or such a table
    itself. Table cases are written as case folders under ``out_dir/_cases``. A plain
    subfolder without ``case.toml`` is returned too, so that it is reported as a failed case
    instead of being silently ignored. A table's documents live beside the table, not in the
    generated folders, so the table's folder is returned as an allowed root (the user named
    the table; a case folder cannot name roots for itself).
    """
    root = Path(input_path)
    if not root.exists():
        raise BatchError(Errors.E113, path=root)
    table: Path | None = None
    if root.is_file():
        if root.suffix.lower() not in (".csv", ".jsonl"):
            raise BatchError(Errors.E110, path=root)
        table = root
    elif (root / MANIFEST_NAME).is_file():
        return [root], ()
    else:
        tables = [root / name for name in TABLE_NAMES if (root / name).is_file()]
        if len(tables) > 1:
            raise CaseError(Errors.E016, path=root, detail="both manifest.csv and manifest.jsonl are present; keep one")
        table = tables[0] if tables else None
    if table is not None:
        return write_case_folders(read_manifest_table(table), out_dir / CASES_DIR_NAME), (table.parent.resolve(),)

    out_resolved = out_dir.resolve()
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith((".", "_"))
               and d.resolve() != out_resolved and _looks_like_case(d)]
    if not folders:
        raise BatchError(Errors.E110, path=root)
    return folders, ()
