"""The command line as a whole: one exit-status table (``errors.ExitStatus``) for every command,
one ``error: ...`` line for a bad input, and the analysis options `run` and `batch` share."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ExitStatus

runner = CliRunner()
NO_MODEL = "/no/such/spacy-model"


def test_the_exit_status_table() -> None:
    # scripts and the README rely on these numbers; typer's usage errors exit 2 too
    assert {s.name: int(s) for s in ExitStatus} == {"OK": 0, "FAILED": 1, "ERROR": 2, "PARTIAL": 3}


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """For each command, arguments with one bad input (nothing loads a model) and the error code it names."""
    broken_case = tmp / "broken"
    broken_case.mkdir()
    (broken_case / "case.toml").write_text("id = [broken")
    not_a_report = tmp / "not-a-report"
    not_a_report.mkdir()
    bad_registry = tmp / "bad-models"
    bad_registry.mkdir()
    (bad_registry / "registry.json").write_text("[1, 2]")
    empty_models = tmp / "empty-models"
    empty_models.mkdir()
    db = ["--db", str(tmp / "missing.sqlite")]
    return {
        "run": (["run", str(broken_case), "--out", str(tmp / "out")], "E002"),
        "batch": (["batch", str(tmp / "nowhere"), "--out", str(tmp / "out")], "E113"),
        "review": (["review", str(not_a_report), *db], "E015"),
        "labels export": (["labels", "export", *db, "--out", str(tmp / "x.jsonl")], "E093"),
        "labels history": (["labels", "history", *db], "E093"),
        "evaluate": (["evaluate", "--task", "stsb", "--path", str(tmp), "--out", str(tmp / "r.json")], "E050"),
        "benchmark": (["--spacy-model", NO_MODEL, "benchmark", str(tmp / "nowhere.json")], "E014"),
        "train-judge": (["--spacy-model", NO_MODEL, "train-judge", str(tmp / "nowhere.json"),
                         "--models-dir", str(empty_models)], "E014"),
        "train": (["train", "--sources", "nosuch", "--models-dir", str(empty_models)], "E057"),
        "models list": (["models", "list", "--models-dir", str(bad_registry)], "E054"),
        "models promote": (["models", "promote", "nosuch", "--models-dir", str(empty_models)], "E055"),
        "models rollback": (["models", "rollback", "--models-dir", str(empty_models)], "E056"),
        "models evaluate": (["models", "evaluate", "nosuch", "--models-dir", str(empty_models)], "E055"),
    }


COMMANDS = [
    "run", "batch", "review", "labels export", "labels history", "evaluate", "benchmark", "train-judge", "train",
    "models list", "models promote", "models rollback", "models evaluate",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_exits_with_the_table_status_and_one_error_line(tmp_path: Path, command: str) -> None:
    args, code = _bad_inputs(tmp_path)[command]
    result = runner.invoke(app, ["--classifier", "none", *args])
    assert result.exit_code == ExitStatus.ERROR, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and f"[{code}]" in errors[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.jsonl").exists()


def test_every_command_group_is_covered() -> None:
    # a new command must be added to the table test above
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == {"run", "batch", "review", "labels", "evaluate", "benchmark", "train-judge", "train", "models"}


def test_an_output_that_cannot_be_written_is_one_error_line(tmp_path: Path) -> None:
    from pipeline.labels import LabelStore

    store = LabelStore(tmp_path / "labels.sqlite")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["labels", "export", "--db", str(store.path), "--out", str(blocker / "x.jsonl")])
    assert result.exit_code == ExitStatus.ERROR
    assert result.output.strip().startswith(f"error: {blocker}") and "cannot write the export" in result.output


# --- the options run and batch share --------------------------------------------------------


@pytest.mark.parametrize(("option", "value"), [
    ("--claim-threshold", "1.5"), ("--claim-threshold", "-0.1"), ("--top-k", "0"), ("--max-doc-mb", "0"),
])
@pytest.mark.parametrize("command", ["run", "batch"])
def test_run_and_batch_refuse_the_same_out_of_range_values(tmp_path: Path, command: str, option: str,
                                                         value: str) -> None:
    from tests.conftest import HANOI

    out = tmp_path / "out"
    result = runner.invoke(app, ["--classifier", "none", command, str(HANOI), "--out", str(out), option, value],
                           env={"COLUMNS": "200"})  # the usage error on one line
    assert result.exit_code == ExitStatus.ERROR, result.output
    assert f"Invalid value for '{option}': Input should be" in result.output
    assert not out.exists()  # refused before anything ran


def test_run_and_batch_share_one_definition_of_each_option() -> None:
    import typer.main

    def params(name: str) -> dict:
        command = typer.main.get_command(app).commands[name]
        return {p.name: p for p in command.params}

    run, batch = params("run"), params("batch")
    shared = {"claim_threshold", "top_k", "min_similarity", "max_doc_mb", "allow_root"}
    assert shared <= run.keys() & batch.keys()
    for name in shared:
        a, b = run[name], batch[name]
        assert (a.opts, a.default, a.help, a.multiple, a.min, a.max) == \
            (b.opts, b.default, b.help, b.multiple, b.min, b.max), name
    assert (run["claim_threshold"].min, run["claim_threshold"].max, run["top_k"].min) == (0.0, 1.0, 1)


def test_batch_passes_the_shared_options_into_the_run_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.batch
    from pipeline.errors import BatchError, Errors

    seen = {}

    def fake_run_batch(input_path, out, *, config, **_):  # noqa: ANN001, ANN003
        seen["config"] = config
        raise BatchError(Errors.E113, path=input_path)

    monkeypatch.setattr(pipeline.batch, "run_batch", fake_run_batch)
    result = runner.invoke(app, ["--classifier", "none", "batch", str(tmp_path), "--claim-threshold", "0.6",
                                 "--top-k", "3", "--min-similarity", "0.5", "--max-doc-mb", "2"])
    assert result.exit_code == ExitStatus.ERROR
    config = seen["config"]
    assert (config.claim_threshold, config.top_k, config.min_similarity, config.max_doc_mb) == (0.6, 3, 0.5, 2.0)
    assert config.classifier == "none"  # the global options still apply
