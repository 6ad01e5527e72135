"""The label store: reviewers' verdicts on divergence flags, with their full history.

Analysts only trust flags they can correct, and corrections are only worth making
if they are kept safely and feed retraining. So every verdict goes to one SQLite
file per project (stdlib ``sqlite3``, no server to run) that:

- keeps the current label of each flag *and* an append-only history of every
  change (who, when, before -> after), so a disputed label can be traced;
- writes each change in one ``BEGIN IMMEDIATE`` transaction (label + history row
  together), so a crash mid-write leaves the previous state, never half of one;
- runs in WAL mode with a busy timeout, so several reviewers (several
  ``divergence review`` processes, or one server's worker threads) can write at
  once without "database is locked" errors;
- versions its schema with ``PRAGMA user_version`` and an ordered migration list,
  so an older file is upgraded in place and a newer one is refused, not mangled.

A label stores the claim texts it was given, so the export (``LabelStore.export``)
is self-contained: it does not need the report folders, which may be regenerated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import Errors, LabelError
from .schema import DIVERGENCE_TYPES

if TYPE_CHECKING:  # heavy imports, only needed for export
    import datasets
    import pandas as pd

DB_ENV = "DIVERGENCE_LABELS_DB"
DEFAULT_DB_NAME = "divergence-labels.sqlite"

# "unrelated" is the reviewer's "not about the same thing": the pipeline aligned two
# claims that do not talk about the same matter. The trainer maps it to "neutral".
LABEL_TYPES: tuple[str, ...] = (*DIVERGENCE_TYPES, "unrelated")
# accept / reject / correct / unrelated answer a flag; "missed" adds one the pipeline did not raise.
FLAG_DECISIONS: tuple[str, ...] = ("accept", "reject", "correct", "unrelated")
DECISIONS: tuple[str, ...] = (*FLAG_DECISIONS, "missed")
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
MAX_REVIEWER_LEN = 100
# C0/C1 controls (an escape sequence can rewrite a terminal) and bidirectional overrides
# (they reorder what is shown): printed escaped, refused in new reviewer names
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# a spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...))
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def printable(text: object) -> str:
    """``text`` with control and bidirectional formatting characters shown as escapes (``\\x1b``)."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


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


def default_db_path() -> Path:
    """``$DIVERGENCE_LABELS_DB`` if set, else ``./divergence-labels.sqlite``: one file per project."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB_NAME)


# --- labels -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimRef:
    """The part of a claim a label keeps: enough to train on without the report."""

    id: str
    doc_id: str
    side: str
    text: str


@dataclass(frozen=True)
class Label:
    """One reviewer's verdict on one flag, or one flag the pipeline missed.

    ``claims`` holds two claims (premise, hypothesis) or one (an omission).
    ``type`` is the reviewed type: the predicted one when accepted, the new one when
    corrected, ``"unrelated"`` for "not about the same thing", and ``None`` when
    rejected (the type is wrong but the right one is unknown; trainers skip it).
    ``time`` is set by the store (UTC, ISO 8601).
    """

    case_id: str
    decision: str
    reviewer: str
    claims: tuple[ClaimRef, ...]
    divergence_id: str | None = None
    type: str | None = None
    predicted_type: str | None = None
    topic: str | None = None
    score: float | None = None
    time: str | None = None

    @classmethod
    def for_flag(
        cls,
        *,
        case_id: str,
        divergence_id: str,
        decision: str,
        reviewer: str,
        claims: Sequence[ClaimRef],
        predicted_type: str,
        type: str | None = None,
        topic: str | None = None,
        score: float | None = None,
    ) -> "Label":
        """A verdict on a flag the pipeline raised; derives the reviewed type from the decision."""
        if decision == "accept":
            type = predicted_type
        elif decision == "reject":
            type = None
        elif decision == "unrelated":
            type = "unrelated"
        elif decision == "correct" and type == predicted_type:
            # "changing" to the same type is agreeing with the model; count it as such
            decision = "accept"
        return cls(
            case_id=case_id,
            decision=decision,
            reviewer=reviewer.strip(),
            claims=tuple(claims),
            divergence_id=divergence_id,
            type=type,
            predicted_type=predicted_type,
            topic=topic,
            score=score,
        )

    @classmethod
    def missed(
        cls, *, case_id: str, reviewer: str, claims: Sequence[ClaimRef], type: str, topic: str | None = None
    ) -> "Label":
        """A divergence the pipeline did not raise: two claims it did not align, or one omission."""
        return cls(
            case_id=case_id, decision="missed", reviewer=reviewer.strip(), claims=tuple(claims), type=type, topic=topic
        )

    @property
    def key(self) -> str:
        """Identity of what is labelled within a case: a later label on the same key replaces this one."""
        if self.divergence_id is not None:
            return flag_key(self.divergence_id)
        return missed_key([c.id for c in self.claims])

    def validate(self) -> None:
        """Refuse anything a trainer could not use or a reviewer could not have meant."""

        def bad(detail: str) -> LabelError:
            return LabelError(Errors.E017, detail=detail)

        if not self.case_id:
            raise bad("no case id")
        if not self.reviewer or not self.reviewer.strip():
            raise bad("the reviewer's name is required")
        if len(self.reviewer) > MAX_REVIEWER_LEN:
            raise bad(f"reviewer name longer than {MAX_REVIEWER_LEN} characters")
        if _UNPRINTABLE.search(self.reviewer):
            raise bad("the reviewer's name contains control characters")
        if self.decision not in DECISIONS:
            raise bad(f"unknown decision {self.decision!r} (use one of: {', '.join(DECISIONS)})")
        if self.type is not None and self.type not in LABEL_TYPES:
            raise bad(f"unknown type {self.type!r} (use one of: {', '.join(LABEL_TYPES)})")
        if not 1 <= len(self.claims) <= 2:
            raise bad(f"a label needs one or two claims, got {len(self.claims)}")
        if any(not c.id for c in self.claims):
            raise bad("empty claim id")
        if len(self.claims) == 2 and self.claims[0].id == self.claims[1].id:
            raise bad(f"claim {self.claims[0].id!r} cannot be paired with itself")

        single = len(self.claims) == 1
        if self.decision == "missed":
            if self.divergence_id is not None:
                raise bad("a missed divergence cannot name a flag the pipeline raised")
            if self.type is None or self.type == "unrelated":
                raise bad("a missed divergence needs its type")
            if single and self.type != "omission":
                raise bad("a single claim can only be marked as an omission")
            if not single and self.type == "omission":
                raise bad("an omission is marked on one claim, not on a pair")
            if not single and self.claims[0].side == self.claims[1].side:
                raise bad(f"both claims are on side {self.claims[0].side!r}; link claims of different sides")
            return

        if not self.divergence_id:
            raise bad(f"decision {self.decision!r} needs the divergence id of the flag")
        if self.decision == "correct":
            if self.type is None or self.type == "unrelated":
                raise bad("a corrected flag needs its new type")
            if single and self.type != "omission":
                raise bad(f"this flag has one claim; it cannot be a {self.type!r} (reject it, or mark it unrelated)")
            if not single and self.type == "omission":
                raise bad("this flag pairs two claims; an omission is marked on one claim")
        elif self.decision == "reject" and self.type is not None:
            raise bad("a rejected flag has no type (use 'correct' to give the right one)")
        elif self.decision == "unrelated" and self.type != "unrelated":
            raise bad("'unrelated' labels have type 'unrelated'")
        elif self.decision == "unrelated" and single:
            raise bad("this flag has one claim, so it cannot pair unrelated claims (reject it instead)")
        elif self.decision == "accept" and self.type != self.predicted_type:
            raise bad("an accepted flag keeps its predicted type (use 'correct' to change it)")

    def summary(self) -> dict[str, Any]:
        """What ``reviews_for`` and the history show of a label."""
        return {"decision": self.decision, "type": self.type, "reviewer": self.reviewer, "time": self.time}


def flag_key(divergence_id: str) -> str:
    return f"flag:{divergence_id}"


def missed_key(claim_ids: Sequence[str]) -> str:
    # order-insensitive: linking A-B and later B-A is the same link, relabelled
    return "missed:" + "|".join(sorted(claim_ids))


@dataclass(frozen=True)
class HistoryEntry:
    """One change to one label: ``before``/``after`` are label summaries, ``None`` when absent."""

    id: int
    case_id: str
    key: str
    divergence_id: str | None
    action: str  # "set" | "clear"
    reviewer: str
    time: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


# --- schema -------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """One schema step; ``version`` is the ``PRAGMA user_version`` after it ran."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "current labels and their append-only history",
        (
            """CREATE TABLE labels (
                case_id TEXT NOT NULL,
                key TEXT NOT NULL,
                divergence_id TEXT,
                decision TEXT NOT NULL,
                type TEXT,
                predicted_type TEXT,
                topic TEXT,
                score REAL,
                reviewer TEXT NOT NULL,
                time TEXT NOT NULL,
                claim_id_a TEXT NOT NULL,
                doc_id_a TEXT,
                side_a TEXT,
                text_a TEXT NOT NULL,
                claim_id_b TEXT,
                doc_id_b TEXT,
                side_b TEXT,
                text_b TEXT,
                PRIMARY KEY (case_id, key)
            )""",
            """CREATE TABLE history (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                case_id TEXT NOT NULL,
                key TEXT NOT NULL,
                divergence_id TEXT,
                action TEXT NOT NULL,
                reviewer TEXT NOT NULL,
                time TEXT NOT NULL,
                before TEXT,
                after TEXT
            )""",
            "CREATE INDEX history_by_label ON history (case_id, key)",
        ),
    ),
)

_LABEL_COLUMNS = (
    "case_id", "key", "divergence_id", "decision", "type", "predicted_type", "topic", "score", "reviewer", "time",
    "claim_id_a", "doc_id_a", "side_a", "text_a", "claim_id_b", "doc_id_b", "side_b", "text_b",
)  # fmt: skip


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# --- the store ----------------------------------------------------------------------


class LabelStore:
    """Labels of one project in one SQLite file.

    Every operation opens its own short-lived connection, so one store can be shared
    by a web server's worker threads, and several processes can use the same file.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        timeout: float = 30.0,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout = timeout
        self.migrations = tuple(migrations)
        if [m.version for m in self.migrations] != list(range(1, len(self.migrations) + 1)):
            raise ValueError("migrations must be numbered 1, 2, ... in order")
        if not self.path.parent.is_dir():
            raise LabelError(Errors.E092, path=self.path, detail="its folder does not exist")
        try:
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                self._migrate(conn)
        except sqlite3.DatabaseError as err:
            raise LabelError(Errors.E092, path=self.path, detail=str(err)) from err

    @property
    def schema_version(self) -> int:
        with self._connect() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    # connections and transactions

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (BEGIN IMMEDIATE takes
        # the write lock up front, so two writers queue on busy_timeout instead of
        # deadlocking when both try to upgrade a read lock).
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA synchronous = FULL")  # labels are hand-made: survive power loss too
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        known = len(self.migrations)
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > known:
            raise LabelError(Errors.E091, path=self.path, found=found, known=known)
        for migration in self.migrations[found:]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # another process may have migrated while we waited for the lock
                if conn.execute("PRAGMA user_version").fetchone()[0] >= migration.version:
                    conn.execute("ROLLBACK")
                    continue
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {migration.version}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # writing

    def record(self, label: Label) -> Label:
        """Store ``label`` (replacing the current label of the same flag) and log the change."""
        label.validate()
        stored = replace(label, reviewer=label.reviewer.strip(), time=_now())
        a = stored.claims[0]
        b = stored.claims[1] if len(stored.claims) > 1 else None
        row = (
            stored.case_id, stored.key, stored.divergence_id, stored.decision, stored.type, stored.predicted_type,
            stored.topic, stored.score, stored.reviewer, stored.time,
            a.id, a.doc_id, a.side, a.text,
            b.id if b else None, b.doc_id if b else None, b.side if b else None, b.text if b else None,
        )  # fmt: skip
        updates = ", ".join(f"{c} = excluded.{c}" for c in _LABEL_COLUMNS[2:])
        with self._transaction() as conn:
            before = self._current(conn, stored.case_id, stored.key)
            conn.execute(
                f"INSERT INTO labels ({', '.join(_LABEL_COLUMNS)}) VALUES ({', '.join('?' * len(row))}) "
                f"ON CONFLICT (case_id, key) DO UPDATE SET {updates}",
                row,
            )
            self._append_history(conn, stored, "set", before=before, after=stored)
        return stored

    def clear(self, case_id: str, key: str, *, reviewer: str) -> Label | None:
        """Withdraw the current label of ``key`` (undo); the history keeps what it was."""
        if not reviewer or not reviewer.strip():
            raise LabelError(Errors.E017, detail="the reviewer's name is required")
        with self._transaction() as conn:
            before = self._current(conn, case_id, key)
            if before is None:
                return None
            conn.execute("DELETE FROM labels WHERE case_id = ? AND key = ?", (case_id, key))
            cleared = replace(before, reviewer=reviewer.strip(), time=_now())
            self._append_history(conn, cleared, "clear", before=before, after=None)
        return before

    def _append_history(
        self, conn: sqlite3.Connection, label: Label, action: str, *, before: Label | None, after: Label | None
    ) -> None:
        conn.execute(
            "INSERT INTO history (case_id, key, divergence_id, action, reviewer, time, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                label.case_id,
                label.key,
                label.divergence_id,
                action,
                label.reviewer,
                label.time,
                json.dumps(before.summary()) if before else None,
                json.dumps(after.summary()) if after else None,
            ),
        )

    # reading

    def _current(self, conn: sqlite3.Connection, case_id: str, key: str) -> Label | None:
        row = conn.execute("SELECT * FROM labels WHERE case_id = ? AND key = ?", (case_id, key)).fetchone()
        return _label_of(row) if row else None

    def get(self, case_id: str, key: str) -> Label | None:
        with self._connect() as conn:
            return self._current(conn, case_id, key)

    def labels(self, *, case_id: str | None = None, decision: str | None = None) -> list[Label]:
        """Current labels, oldest first."""
        where, args = _where(case_id=case_id, decision=decision)
        with self._connect() as conn:
            rows = conn.execute(f"SELECT * FROM labels {where} ORDER BY time, key", args).fetchall()
        return [_label_of(r) for r in rows]

    def reviews_for(self, case_id: str) -> dict[str, dict[str, Any]]:
        """``{divergence_id: {"decision", "type", "reviewer", "time"}}`` for the flags of a case reviewed so far."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT divergence_id, decision, type, reviewer, time FROM labels "
                "WHERE case_id = ? AND divergence_id IS NOT NULL",
                (case_id,),
            ).fetchall()
        return {r["divergence_id"]: {k: r[k] for k in ("decision", "type", "reviewer", "time")} for r in rows}

    def history(
        self,
        *,
        case_id: str | None = None,
        divergence_id: str | None = None,
        key: str | None = None,
        limit: int | None = None,
    ) -> list[HistoryEntry]:
        """Every change, oldest first (the last ``limit`` ones if given)."""
        where, args = _where(case_id=case_id, divergence_id=divergence_id, key=key)
        sql = f"SELECT * FROM history {where} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [
            HistoryEntry(
                id=r["id"],
                case_id=r["case_id"],
                key=r["key"],
                divergence_id=r["divergence_id"],
                action=r["action"],
                reviewer=r["reviewer"],
                time=r["time"],
                before=json.loads(r["before"]) if r["before"] else None,
                after=json.loads(r["after"]) if r["after"] else None,
            )
            for r in reversed(rows)
        ]

    # export

    def to_pandas(self, *, case_id: str | None = None) -> "pd.DataFrame":
        """Labelled claim pairs, one row per current label, columns ``EXPORT_COLUMNS``.

        Omissions have the claim as ``premise`` and an empty ``hypothesis``; rejected
        flags have ``type`` None (trainers skip rows without a type).
        """
        import pandas as pd

        rows = [_export_row(label) for label in self.labels(case_id=case_id)]
        frame = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
        return frame.astype("string")  # typed even when empty or all-null, for Parquet/Arrow

    def to_dataset(self, *, case_id: str | None = None) -> "datasets.Dataset":
        import datasets

        features = datasets.Features({c: datasets.Value("string") for c in EXPORT_COLUMNS})
        rows = [_export_row(label) for label in self.labels(case_id=case_id)]
        return datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in EXPORT_COLUMNS}, features=features)

    def export(self, out: str | Path, *, format: str, case_id: str | None = None) -> tuple[Path, int]:
        """Write the labels to ``out`` (a file, or a folder for ``dataset``) atomically; return (path, rows)."""
        if format not in EXPORT_FORMATS:
            raise LabelError(Errors.E095, detail=f"unknown format {format!r} (use {', '.join(EXPORT_FORMATS)})")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if format == "dataset":
            dataset = self.to_dataset(case_id=case_id)
            _replace_dir(out, lambda tmp: dataset.save_to_disk(str(tmp)))
            return out, len(dataset)
        if out.is_dir():
            raise LabelError(Errors.E095, path=out, detail=f"is a folder; {format} export writes a file")
        frame = self.to_pandas(case_id=case_id)
        writers: dict[str, Callable[[Path], None]] = {
            "jsonl": lambda tmp: frame.to_json(tmp, orient="records", lines=True, force_ascii=False),
            "csv": lambda tmp: frame.map(neutralise_formula).to_csv(tmp, index=False),
            "parquet": lambda tmp: frame.to_parquet(tmp, index=False),
        }
        _replace_file(out, writers[format])
        return out, len(frame)


def _where(**filters: str | None) -> tuple[str, list[str]]:
    used = {k: v for k, v in filters.items() if v is not None}
    if not used:
        return "", []
    return "WHERE " + " AND ".join(f"{k} = ?" for k in used), list(used.values())


def _label_of(row: sqlite3.Row) -> Label:
    claims = [ClaimRef(row["claim_id_a"], row["doc_id_a"], row["side_a"], row["text_a"])]
    if row["claim_id_b"] is not None:
        claims.append(ClaimRef(row["claim_id_b"], row["doc_id_b"], row["side_b"], row["text_b"]))
    return Label(
        case_id=row["case_id"],
        decision=row["decision"],
        reviewer=row["reviewer"],
        claims=tuple(claims),
        divergence_id=row["divergence_id"],
        type=row["type"],
        predicted_type=row["predicted_type"],
        topic=row["topic"],
        score=row["score"],
        time=row["time"],
    )


def _export_row(label: Label) -> dict[str, Any]:
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


# --- atomic writes -------------------------------------------------------------------


def _replace_file(out: Path, write: Callable[[Path], None]) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; an export is meant to be shared
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _replace_dir(out: Path, write: Callable[[Path], None]) -> None:
    """Fill a fresh sibling folder, then swap it in: readers see the old or the new export, never a mix."""
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        write(tmp)
        if out.exists():
            if not out.is_dir():
                raise LabelError(Errors.E095, path=out, detail="is a file; dataset export writes a folder")
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, old)  # renaming onto an empty folder is allowed
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
