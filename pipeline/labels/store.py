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
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Errors, LabelError
from .export import export_dataset, export_frame, write_export
from .records import ClaimRef, HistoryEntry, Label

if TYPE_CHECKING:  # heavy imports, only needed for export
    import datasets
    import pandas as pd

DB_ENV = "DIVERGENCE_LABELS_DB"
DEFAULT_DB_NAME = "divergence-labels.sqlite"


def default_db_path() -> Path:
    """``$DIVERGENCE_LABELS_DB`` if set, else ``./divergence-labels.sqlite``: one file per project."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB_NAME)


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

    # export (pipeline.labels.export)

    def to_pandas(self, *, case_id: str | None = None) -> "pd.DataFrame":
        """Current labels as the export's rows (``export.EXPORT_COLUMNS``)."""
        return export_frame(self.labels(case_id=case_id))

    def to_dataset(self, *, case_id: str | None = None) -> "datasets.Dataset":
        return export_dataset(self.labels(case_id=case_id))

    def export(self, out: str | Path, *, format: str, case_id: str | None = None) -> tuple[Path, int]:
        """Write the labels to ``out`` (a file, or a folder for ``dataset``) atomically; return (path, rows)."""
        return write_export(self.labels(case_id=case_id), out, format=format)


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
