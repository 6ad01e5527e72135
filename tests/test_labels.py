"""The label store: history, refusals, crash safety, concurrent reviewers, migrations, export."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from pipeline.commands import review as review_commands
from pipeline.errors import LabelError
from pipeline.labels import (
    DB_ENV,
    EXPORT_COLUMNS,
    MIGRATIONS,
    ClaimRef,
    Label,
    LabelStore,
    Migration,
    default_db_path,
    flag_key,
)

US = ClaimRef("us-1", "us-press", "US", "They wanted the sanctions lifted in their entirety.")
KP = ClaimRef("kp-1", "dprk-press", "DPRK", "We asked for partial lifting of sanctions.")
KP2 = ClaimRef("kp-2", "dprk-press", "DPRK", "We proposed to dismantle Yongbyon.")


def flag(decision: str, *, div: str = "d1", type: str | None = None, reviewer: str = "ann", claims=(US, KP),
         predicted: str = "scope") -> Label:  # fmt: skip
    return Label.for_flag(
        case_id="hanoi-2019",
        divergence_id=div,
        decision=decision,
        reviewer=reviewer,
        claims=claims,
        predicted_type=predicted,
        type=type,
        topic="Sanctions",
        score=0.55,
    )


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite")


def test_relabelling_keeps_full_history(store: LabelStore) -> None:
    store.record(flag("accept", reviewer="ann"))
    store.record(flag("correct", type="quantity", reviewer="bob"))

    (current,) = store.labels()
    assert (current.decision, current.type, current.reviewer) == ("correct", "quantity", "bob")
    first, second = store.history(case_id="hanoi-2019", divergence_id="d1")
    assert first.before is None
    assert first.after["decision"] == "accept" and first.after["type"] == "scope" and first.reviewer == "ann"
    assert second.before == first.after
    assert second.after["type"] == "quantity" and second.reviewer == "bob"
    assert second.time >= first.time


def test_reviews_for_gives_each_reviewed_flag(store: LabelStore) -> None:
    store.record(flag("reject", div="d1"))
    store.record(flag("unrelated", div="d2", reviewer="bob"))
    store.record(Label.missed(case_id="hanoi-2019", reviewer="ann", claims=[KP2], type="omission"))
    reviews = store.reviews_for("hanoi-2019")
    assert set(reviews) == {"d1", "d2"}  # missed divergences have no flag id
    assert reviews["d1"]["decision"] == "reject" and reviews["d1"]["type"] is None
    assert reviews["d2"] == {"decision": "unrelated", "type": "unrelated", "reviewer": "bob", "time": reviews["d2"]["time"]}
    assert store.reviews_for("other-case") == {}


def test_decisions_set_the_reviewed_type(store: LabelStore) -> None:
    assert store.record(flag("accept")).type == "scope"
    assert store.record(flag("reject")).type is None
    assert store.record(flag("unrelated")).type == "unrelated"
    # changing to the predicted type is agreeing with the model
    same = store.record(flag("correct", type="scope"))
    assert (same.decision, same.type) == ("accept", "scope")


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (flag("correct", type="bogus"), "unknown type 'bogus'"),
        (flag("correct"), "needs its new type"),
        (flag("accept", reviewer="   "), "reviewer's name is required"),
        (flag("maybe"), "unknown decision 'maybe'"),
        (flag("correct", type="contradiction", claims=(KP2,), predicted="omission"), "this flag has one claim"),
        (flag("unrelated", claims=(KP2,), predicted="omission"), "this flag has one claim"),
        (flag("correct", type="omission"), "an omission is marked on one claim"),
        (Label.missed(case_id="hanoi-2019", reviewer="ann", claims=[KP, KP2], type="contradiction"), "different sides"),
        (Label.missed(case_id="hanoi-2019", reviewer="ann", claims=[US], type="scope"), "only be marked as an omission"),
        (Label.missed(case_id="hanoi-2019", reviewer="ann", claims=[US, KP], type="unrelated"), "needs its type"),
        (Label.missed(case_id="hanoi-2019", reviewer="ann", claims=[US, US], type="scope"), "paired with itself"),
    ],
)
def test_invalid_labels_are_refused_and_change_nothing(store: LabelStore, label: Label, message: str) -> None:
    store.record(flag("accept", div="kept"))
    with pytest.raises(LabelError, match=message) as err:
        store.record(label)
    assert err.value.code == "E017"
    assert [(l.divergence_id, l.decision) for l in store.labels()] == [("kept", "accept")]
    assert len(store.history()) == 1


def test_failure_mid_write_leaves_the_previous_label(store: LabelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.record(flag("accept"))

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk unplugged")

    # the label row is written, then the history row fails: both must roll back
    monkeypatch.setattr(store, "_append_history", crash)
    with pytest.raises(RuntimeError):
        store.record(flag("correct", type="quantity"))
    monkeypatch.undo()

    (current,) = store.labels()
    assert current.decision == "accept"
    assert len(store.history()) == 1


def test_process_killed_mid_transaction_loses_only_that_write(store: LabelStore) -> None:
    store.record(flag("accept"))
    # another process takes the write lock, changes the label and dies before COMMIT
    script = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE')\n"
        "conn.execute(\"UPDATE labels SET decision = 'reject', type = NULL\")\n"
        "os._exit(9)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(store.path)], timeout=60)
    assert result.returncode == 9

    (current,) = store.labels()
    assert current.decision == "accept"
    store.record(flag("reject"))  # the lock died with the process: writing works again
    assert store.labels()[0].decision == "reject"


def test_several_reviewers_write_at_once(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    LabelStore(path)
    errors: list[BaseException] = []

    def reviewer(name: str) -> None:
        own = LabelStore(path)  # as a separate `divergence review` process would
        try:
            for i in range(15):
                own.record(flag("accept" if i % 2 else "reject", div=f"{name}-{i}", reviewer=name))
                own.record(flag("correct", type="quantity", div=f"shared-{i}", reviewer=name))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=reviewer, args=(f"r{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    store = LabelStore(path)
    assert len(store.labels()) == 4 * 15 + 15
    assert len(store.history()) == 4 * 15 * 2
    # every change to a shared flag is in its history, each after the previous one
    shared = store.history(key=flag_key("shared-0"))
    assert len(shared) == 4
    assert all(b.before == a.after for a, b in zip(shared, shared[1:]))


def test_database_is_in_wal_mode_with_a_versioned_schema(store: LabelStore) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store.schema_version == len(MIGRATIONS)


def test_old_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    LabelStore(path).record(flag("accept"))
    added = Migration(len(MIGRATIONS) + 1, "reviewer notes", ("ALTER TABLE labels ADD COLUMN note TEXT",))

    upgraded = LabelStore(path, migrations=(*MIGRATIONS, added))

    assert upgraded.schema_version == len(MIGRATIONS) + 1
    assert upgraded.labels()[0].decision == "accept"
    conn = sqlite3.connect(path)
    assert "note" in [row[1] for row in conn.execute("PRAGMA table_info(labels)")]
    conn.close()


def test_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    LabelStore(path).record(flag("accept"))
    broken = Migration(
        len(MIGRATIONS) + 1, "half-written", ("ALTER TABLE labels ADD COLUMN note TEXT", "NOT VALID SQL")
    )
    with pytest.raises(LabelError, match="cannot open labels database"):
        LabelStore(path, migrations=(*MIGRATIONS, broken))
    conn = sqlite3.connect(path)
    assert "note" not in [row[1] for row in conn.execute("PRAGMA table_info(labels)")]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    LabelStore(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(LabelError, match="newer divergence") as err:
        LabelStore(path)
    assert str(path) in str(err.value)


def test_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    path.write_text("these are not the labels you are looking for\n" * 100)
    with pytest.raises(LabelError, match="cannot open labels database") as err:
        LabelStore(path)
    assert str(err.value).startswith(f"{path}: ")


def test_database_path_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DB_ENV, raising=False)
    assert default_db_path() == Path("divergence-labels.sqlite")
    monkeypatch.setenv(DB_ENV, str(tmp_path / "team.sqlite"))
    assert LabelStore().path == tmp_path / "team.sqlite"
    assert (tmp_path / "team.sqlite").is_file()


def test_clear_withdraws_a_label_and_logs_it(store: LabelStore) -> None:
    store.record(flag("accept"))
    assert store.clear("hanoi-2019", flag_key("d1"), reviewer="bob").decision == "accept"
    assert store.reviews_for("hanoi-2019") == {}
    last = store.history()[-1]
    assert (last.action, last.reviewer, last.after) == ("clear", "bob", None)
    assert last.before["decision"] == "accept"
    assert store.clear("hanoi-2019", flag_key("d1"), reviewer="bob") is None


# --- export ---------------------------------------------------------------------------


def _labelled(store: LabelStore) -> None:
    store.record(flag("accept", div="d-accept"))
    store.record(flag("reject", div="d-reject"))
    store.record(flag("correct", div="d-correct", type="contradiction"))
    store.record(flag("unrelated", div="d-unrelated"))
    store.record(Label.missed(case_id="hanoi-2019", reviewer="ann", claims=[KP2], type="omission"))
    store.record(Label.missed(case_id="other-case", reviewer="bob", claims=[US, KP2], type="quantity"))


def test_export_rows_follow_the_training_contract(store: LabelStore) -> None:
    _labelled(store)
    frame = store.to_pandas(case_id="hanoi-2019").set_index("divergence_id", drop=False)
    assert list(frame.columns) == list(EXPORT_COLUMNS)
    assert len(frame) == 5
    assert frame.loc["d-accept", "type"] == "scope"
    assert pd.isna(frame.loc["d-reject", "type"]) and frame.loc["d-reject", "decision"] == "reject"
    assert frame.loc["d-correct", ["type", "predicted_type"]].tolist() == ["contradiction", "scope"]
    assert frame.loc["d-unrelated", "type"] == "unrelated"
    accepted = frame.loc["d-accept"]
    assert (accepted.premise, accepted.hypothesis) == (US.text, KP.text)
    assert (accepted.claim_id_a, accepted.claim_id_b, accepted.side_a, accepted.side_b) == ("us-1", "kp-1", "US", "DPRK")
    assert (accepted.doc_id_a, accepted.doc_id_b, accepted.reviewer) == ("us-press", "dprk-press", "ann")
    omission = frame[frame.decision == "missed"].iloc[0]
    assert (omission.premise, omission.hypothesis, omission.type) == (KP2.text, "", "omission")
    assert pd.isna(omission.claim_id_b) and pd.isna(omission.divergence_id)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_files_read_back(store: LabelStore, tmp_path: Path, fmt: str) -> None:
    _labelled(store)
    out = tmp_path / "exports" / f"labels.{fmt}"
    path, rows = store.export(out, format=fmt)
    assert (path, rows) == (out, 6)
    if fmt == "jsonl":
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        back = pd.DataFrame(records)
    elif fmt == "csv":
        back = pd.read_csv(out, keep_default_na=False, na_values=[""])
    else:
        back = pd.read_parquet(out)
    assert list(back.columns) == list(EXPORT_COLUMNS)
    assert sorted(back["decision"]) == sorted(["accept", "reject", "correct", "unrelated", "missed", "missed"])
    assert back[back.decision == "reject"]["type"].isna().all()
    # nothing left behind by the atomic write
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_dataset_export_replaces_the_previous_one(store: LabelStore, tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "labels-dataset"
    store.record(flag("accept", div="d-accept"))
    store.export(out, format="dataset")
    _labelled(store)
    _, rows = store.export(out, format="dataset", case_id="hanoi-2019")

    loaded = datasets.load_from_disk(str(out))
    assert rows == len(loaded) == 5
    assert list(loaded.column_names) == list(EXPORT_COLUMNS)
    assert all(v.dtype == "string" for v in loaded.features.values())
    by_id = {row["divergence_id"]: row for row in loaded}
    assert by_id["d-reject"]["type"] is None and by_id["d-correct"]["type"] == "contradiction"
    # the old export was swapped out whole; no temporary folders are left behind
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # shared like any output (pipeline.files), not the 0700/0600 of a temporary folder and its files
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o666 & ~umask}


def test_empty_export_still_has_the_columns(store: LabelStore, tmp_path: Path) -> None:
    _, rows = store.export(tmp_path / "empty.parquet", format="parquet")
    assert rows == 0
    assert list(pd.read_parquet(tmp_path / "empty.parquet").columns) == list(EXPORT_COLUMNS)


def test_unknown_export_format_is_refused(store: LabelStore, tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="cannot export labels: unknown format 'xlsx'"):
        store.export(tmp_path / "labels.xlsx", format="xlsx")
    (tmp_path / "taken").mkdir()
    with pytest.raises(LabelError, match="is a folder; jsonl export writes a file"):
        store.export(tmp_path / "taken", format="jsonl")
    (tmp_path / "a-file").write_text("keep me")
    with pytest.raises(LabelError, match="is a file; dataset export writes a folder"):
        store.export(tmp_path / "a-file", format="dataset")
    assert (tmp_path / "a-file").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".a-file")] == []  # no temporary folder left


# --- CLI ------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    review_commands.register(app)
    return app


def test_cli_export_and_history(cli: typer.Typer, store: LabelStore, tmp_path: Path) -> None:
    _labelled(store)
    runner = CliRunner()
    out = tmp_path / "labels.jsonl"
    result = runner.invoke(cli, ["labels", "export", "--db", str(store.path), "--format", "jsonl", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote 6 labelled pair(s)" in result.output
    assert len(out.read_text().splitlines()) == 6

    result = runner.invoke(cli, ["labels", "history", "--db", str(store.path), "--divergence", "d-correct"])
    assert result.exit_code == 0, result.output
    assert "corrected to contradiction" in result.output and "d-correct" in result.output
    assert "d-accept" not in result.output


def test_cli_refuses_a_missing_database(cli: typer.Typer, tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    result = CliRunner().invoke(cli, ["labels", "export", "--db", str(missing), "--out", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2
    assert f"{missing}: labels database not found" in result.output
    assert not missing.exists()  # a typo must not create an empty database


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "dataset"])
def test_export_is_read_by_the_trainer(store: LabelStore, tmp_path: Path, fmt: str) -> None:
    """The review export feeds `divergence train --labels`: rejections and omissions are skipped."""
    from pipeline.datasets.nli import ID2LABEL, TYPE_TO_LABEL, load_user_labels

    _labelled(store)
    out = tmp_path / (f"labels.{fmt}" if fmt != "dataset" else "labels-dataset")
    store.export(out, format=fmt)
    pairs = load_user_labels(out)
    types = {row["type"]: ID2LABEL[row["label"]] for row in pairs}
    assert "omission" not in types and "none" not in types and "nan" not in types
    assert types.get("quantity") == "contradiction"  # the missed pair of another case
    assert set(types) <= {"scope", "contradiction", "unrelated", "quantity"}
    assert all(label == TYPE_TO_LABEL[t] for t, label in types.items())
    assert all(row["hypothesis"] for row in pairs)
