"""The encoder's sentence-pair sets: STS Benchmark and MRPC, as ``datasets.Dataset`` objects.

They measure the alignment encoder (frozen sentence vectors compared by cosine), not
the pair classifier, so they have their own columns: ``sentence1``, ``sentence2`` and a
``score`` (STS-B, 0-5) or ``label`` (MRPC, 1 = paraphrase). Files are read in the
datasets' own layouts from ``../shared/data`` (or ``$DIVERGENCE_DATA``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from datasets import Dataset

from ..errors import DataError, Errors
from .nli import data_root


def split_file(task: str, path: Path | None, split: str) -> Path:
    """``sts-<split>.csv`` / ``msr-para-<split>.tsv`` in a folder, or the file given."""
    name = {"stsb": f"sts-{split}.csv", "mrpc": f"msr-para-{split}.tsv"}[task]
    folder = path if path is not None else data_root() / task
    file = folder / name if folder.is_dir() or path is None else folder
    if not file.is_file():
        raise DataError(Errors.E050, path=file, name=task)
    return file


def sibling_train_file(task: str, file: Path) -> Path:
    name = {"stsb": "sts-train.csv", "mrpc": "msr-para-train.tsv"}[task]
    sibling = file.parent / name
    if not sibling.is_file():
        raise DataError(
            Errors.E050, path=sibling, name=f"{task} train split (the baselines and thresholds are fitted on it)"
        )
    return sibling


def _tsv_rows(file: Path) -> Iterator[tuple[int, list[str]]]:
    """Tab-separated rows with quotes taken literally: both corpora contain
    unbalanced ``"`` inside sentences, which a CSV dialect would swallow."""
    try:
        with file.open(encoding="utf-8-sig", newline="") as fh:
            for lineno, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if row and any(cell.strip() for cell in row):
                    yield lineno, row
    except UnicodeDecodeError as err:
        raise DataError(Errors.E051, path=file, detail=f"not UTF-8 ({err.reason} at byte {err.start})") from err


def load_stsb(path: str | Path | None = None, split: str = "dev") -> Dataset:
    """STS Benchmark (``sts-<split>.csv``): genre, file, year, id, score, s1, s2,
    and on some rows extra source columns, which are ignored.

    ``path`` is the folder or the file itself. Columns: ``sentence1``,
    ``sentence2``, ``score`` (0-5), ``genre``.
    """
    file = split_file("stsb", Path(path) if path is not None else None, split)
    rows = []
    for lineno, cells in _tsv_rows(file):
        if len(cells) < 7:
            raise DataError(
                Errors.E051, path=file, detail=f"line {lineno}: {len(cells)} tab-separated fields, expected at least 7"
            )
        try:
            score = float(cells[4])
        except ValueError:
            raise DataError(
                Errors.E051, path=file, detail=f"line {lineno}: score {cells[4]!r} is not a number"
            ) from None
        if not 0.0 <= score <= 5.0:
            raise DataError(Errors.E051, path=file, detail=f"line {lineno}: score {score} outside 0-5")
        rows.append({"sentence1": cells[5].strip(), "sentence2": cells[6].strip(), "score": score, "genre": cells[0]})
    if not rows:
        raise DataError(Errors.E051, path=file, detail="no sentence pairs")
    return Dataset.from_list(rows)


def load_mrpc(path: str | Path | None = None, split: str = "val") -> Dataset:
    """MRPC in the ``msr-para-<split>.tsv`` layout: a header, then Quality (0/1),
    #1 ID, #2 ID, #1 String, #2 String. ``path`` is the folder or the file.
    Columns: ``sentence1``, ``sentence2``, ``label`` (1 = paraphrase)."""
    file = split_file("mrpc", Path(path) if path is not None else None, split)
    rows = []
    for lineno, cells in _tsv_rows(file):
        if lineno == 1 and cells[0].strip().lower() == "quality":
            continue
        if len(cells) != 5:
            raise DataError(
                Errors.E051, path=file, detail=f"line {lineno}: {len(cells)} tab-separated fields, expected 5"
            )
        if cells[0].strip() not in {"0", "1"}:
            raise DataError(Errors.E051, path=file, detail=f"line {lineno}: Quality {cells[0]!r} is not 0 or 1")
        rows.append({"sentence1": cells[3].strip(), "sentence2": cells[4].strip(), "label": int(cells[0])})
    if not rows:
        raise DataError(Errors.E051, path=file, detail="no sentence pairs")
    return Dataset.from_list(rows)

