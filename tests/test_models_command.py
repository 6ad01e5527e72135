"""`divergence models list|promote|rollback|evaluate` on a temporary models folder of fake
versions: what a user sees and what the registry says afterwards. No model is loaded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import registry
from pipeline.cli import app

runner = CliRunner()


def models_cli(*args: str, models_dir: Path):
    return runner.invoke(app, ["models", *args, "--models-dir", str(models_dir)])


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """Two versions, ``v-old`` promoted and ``v-new`` not, each a folder with a placeholder file."""
    folder = tmp_path / "models"
    for name in ("v-old", "v-new"):
        (folder / name).mkdir(parents=True)
        (folder / name / "divergence.json").write_text("{}", encoding="utf-8")
    (folder / "registry.json").write_text(json.dumps({
        "default": "v-old",
        "history": ["v-old"],
        "versions": {
            "v-new": {"path": "v-new", "created": "2026-02-01T00:00:00+00:00", "metrics": {"sick": 0.86, "note": "x"},
                      "promoted": False},
            "v-old": {"path": "v-old", "created": "2026-01-01T00:00:00+00:00", "metrics": {"sick": 0.8513},
                      "promoted": True},
        },
    }), encoding="utf-8")
    return folder


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_list_marks_the_default_and_orders_versions_oldest_first(models_dir: Path) -> None:
    result = models_cli("list", models_dir=models_dir)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[:2] for line in lines] == [["*", "v-old"], ["v-new", "2026-02-01T00:00:00+00:00"]]
    assert lines[0].endswith("sick=0.851") and lines[1].endswith("sick=0.860")  # numeric metrics only
    assert "note" not in result.output


def test_list_json_is_machine_readable(models_dir: Path) -> None:
    result = models_cli("list", "--json", models_dir=models_dir)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["name"], r["is_default"], r["promoted"]) for r in rows] == [("v-old", True, True), ("v-new", False, False)]
    assert rows[1]["metrics"] == {"sick": 0.86, "note": "x"} and rows[1]["path"] == "v-new"


def test_list_of_an_empty_folder_says_so(tmp_path: Path) -> None:
    result = models_cli("list", models_dir=tmp_path)
    assert result.exit_code == 0
    assert one_line(result.output) == f"no versions in {tmp_path}"
    assert not (tmp_path / "registry.json").exists()  # listing writes nothing


def test_promote_makes_a_version_the_default_and_records_it(models_dir: Path) -> None:
    result = models_cli("promote", "v-new", models_dir=models_dir)
    assert result.exit_code == 0, result.output
    assert one_line(result.output) == "default is now v-new"
    data = registry.load_registry(models_dir)
    assert data["default"] == "v-new" and data["history"] == ["v-old", "v-new"]
    assert data["versions"]["v-new"]["promoted"] is True
    assert registry.resolve_version("default", models_dir=models_dir) == ("v-new", models_dir / "v-new")
    listed = models_cli("list", models_dir=models_dir).output.splitlines()
    assert [line[0] for line in listed] == [" ", "*"]
    # promoting the default again does not repeat it in the history
    assert models_cli("promote", "v-new", models_dir=models_dir).exit_code == 0
    assert registry.load_registry(models_dir)["history"] == ["v-old", "v-new"]


def test_rollback_restores_the_previous_default(models_dir: Path) -> None:
    assert models_cli("promote", "v-new", models_dir=models_dir).exit_code == 0
    result = models_cli("rollback", models_dir=models_dir)
    assert result.exit_code == 0, result.output
    assert one_line(result.output) == "default is now v-old"
    data = registry.load_registry(models_dir)
    assert data["default"] == "v-old" and data["history"] == ["v-old"]
    assert data["versions"]["v-new"]["promoted"] is False
    # with one promotion left there is nothing to roll back to, and nothing changes
    before = (models_dir / "registry.json").read_bytes()
    again = models_cli("rollback", models_dir=models_dir)
    assert again.exit_code == 2
    assert "[E056]" in one_line(again.output) and str(models_dir / "registry.json") in again.output
    assert (models_dir / "registry.json").read_bytes() == before


@pytest.mark.parametrize(("name", "code"), [("v-missing", "E055"), ("v-gone", "E053")])
def test_promoting_an_unknown_or_folderless_version_fails_in_one_line(models_dir: Path, name: str, code: str) -> None:
    data = registry.load_registry(models_dir)
    data["versions"]["v-gone"] = {"path": "v-gone", "created": "2026-03-01T00:00:00+00:00", "metrics": {}}
    registry.save_registry(data, models_dir)  # registered, but its folder was deleted
    before = (models_dir / "registry.json").read_bytes()
    result = models_cli("promote", name, models_dir=models_dir)
    assert result.exit_code == 2
    line = one_line(result.output)
    assert f"[{code}]" in line and "Traceback" not in result.output
    if code == "E055":  # the message lists what the user could have meant
        assert "known: v-gone, v-new, v-old" in line
    assert (models_dir / "registry.json").read_bytes() == before


def test_malformed_registry_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "registry.json").write_text("{not json", encoding="utf-8")
    for args in (["list"], ["promote", "v-old"], ["rollback"]):
        result = models_cli(*args, models_dir=tmp_path)
        assert result.exit_code == 2, args
        line = one_line(result.output)
        assert f"{tmp_path / 'registry.json'}: malformed model registry" in line and line.endswith("[E054]")


def test_evaluate_of_an_unknown_version_fails_before_loading_anything(models_dir: Path) -> None:
    result = models_cli("evaluate", "v-missing", models_dir=models_dir)
    assert result.exit_code == 2
    assert "unknown model version 'v-missing'" in one_line(result.output) and "[E055]" in result.output


def test_models_without_a_command_lists_its_commands() -> None:
    result = runner.invoke(app, ["models"])
    # rows of the help's command table: a name, two spaces or more, its one-line description
    listed = re.findall(r"^\W*([a-z]+) {2,}[A-Z]", result.output, re.M)
    assert sorted(listed) == ["evaluate", "list", "promote", "rollback"], result.output
