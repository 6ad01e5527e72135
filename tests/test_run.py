"""`divergence run`: the report contract, exit codes, escaping, idempotent reruns."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.schema import DIVERGENCE_TYPES
from tests.conftest import HANOI, write_case

runner = CliRunner()
ARGS = ["--classifier", "none"]


@pytest.fixture(scope="module")
def hanoi_report(tmp_path_factory, models):
    out = tmp_path_factory.mktemp("hanoi")
    result = runner.invoke(app, [*ARGS, "run", str(HANOI), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "report.json").read_text())


def test_report_follows_the_contract(hanoi_report):
    _, report = hanoi_report
    assert report["schema_version"] == 1
    assert report["case"] == {"id": "hanoi-2019", "title": "Second US-DPRK summit, Hanoi", "date": "2019-02-28"}
    texts = {}
    for doc in report["documents"]:
        assert {"id", "side", "speaker", "date", "source", "path", "sha256"} <= doc.keys()
        texts[doc["id"]] = doc["text"]
        for item in doc["turns"] + doc["sentences"]:
            assert doc["text"][item["start"]:item["end"]].strip()
    assert len(report["documents"]) == 5
    claims = {c["id"]: c for c in report["claims"]}
    for claim in claims.values():
        assert {"id", "doc_id", "side", "claimer", "text", "start", "end", "entities", "frame"} <= claim.keys()
        assert texts[claim["doc_id"]][claim["start"]:claim["end"]] == claim["text"]
        for entity in claim["entities"]:
            assert {"text", "label", "canonical", "start", "end"} <= entity.keys()
    scores = [d["score"] for d in report["divergences"]]
    assert scores and scores == sorted(scores, reverse=True)
    for d in report["divergences"]:
        assert d["type"] in DIVERGENCE_TYPES and 0 <= d["score"] <= 1
        assert all(c in claims for c in d["claims"])
        assert len(d["claims"]) == (1 if d["type"] == "omission" else 2)
        assert d["explanation"] and d["topic"] in report["topics"]


def test_sanctions_disagreement_leads_the_report(hanoi_report):
    _, report = hanoi_report
    claims = {c["id"]: c for c in report["claims"]}
    top = report["divergences"][:5]
    sanctions = [d for d in top if d["type"] in {"quantity", "scope"}
                 and any("sanctions" in claims[c]["text"] for c in d["claims"])]
    assert sanctions, [d["explanation"] for d in top]
    quantity = next(d for d in report["divergences"] if d["type"] == "quantity")
    assert "five of the eleven" in quantity["explanation"]
    assert "all" in quantity["explanation"] or "entirety" in quantity["explanation"]


def test_rerun_is_byte_identical(hanoi_report, tmp_path):
    out, _ = hanoi_report
    result = runner.invoke(app, [*ARGS, "run", str(HANOI), "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert (tmp_path / "report.json").read_bytes() == (out / "report.json").read_bytes()
    assert (tmp_path / "report.html").read_bytes() == (out / "report.html").read_bytes()


def test_transcript_markup_is_escaped_in_the_html(tmp_path, models):
    evil = '<script>alert(1)</script> "><img src=x onerror=alert(2)>'
    root = write_case(tmp_path / "case", {
        "us.txt": ("us", "US", f"THE PRESIDENT:  They wanted all the sanctions lifted {evil}.\n"),
        "d.txt": ("d", "DPRK", "RI:  We asked for five of the eleven resolutions to be lifted, not all sanctions.\n")})
    result = runner.invoke(app, [*ARGS, "run", str(root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_bad_input_exits_nonzero_with_one_line_and_writes_nothing(tmp_path):
    root = tmp_path / "case"
    root.mkdir()
    (root / "case.toml").write_text("id = [broken")
    result = runner.invoke(app, [*ARGS, "run", str(root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "case.toml" in lines[0] and "malformed" in lines[0]
    assert not (tmp_path / "out").exists()


def test_bad_document_is_skipped_reported_and_exit_is_nonzero(tmp_path, models):
    root = write_case(tmp_path / "case", {
        "us.txt": ("us", "US", "THE PRESIDENT:  They wanted all the sanctions lifted.\n"),
        "us2.txt": ("us2", "US", ""),
        "d.txt": ("d", "DPRK", "RI:  We asked for five of the eleven resolutions.\n")})
    result = runner.invoke(app, [*ARGS, "run", str(root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 3
    assert "us2.txt: document is empty" in result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [d["id"] for d in report["documents"]] == ["us", "d"]
    assert report["skipped"][0]["path"].endswith("us2.txt")


@pytest.mark.slow  # loads the models before it fails
def test_strict_mode_fails_on_a_bad_document(tmp_path):
    root = write_case(tmp_path / "case", {
        "us.txt": ("us", "US", "THE PRESIDENT:  They wanted all the sanctions lifted.\n"),
        "d.txt": ("d", "DPRK", b"\x00\x01\x02binary\x00" * 50)})
    result = runner.invoke(app, [*ARGS, "run", str(root), "--strict", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "looks binary" in result.output
    assert not (tmp_path / "out" / "report.json").exists()


def test_unwritable_output_is_one_line(tmp_path, models):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the report folder should be")
    result = runner.invoke(app, [*ARGS, "run", str(HANOI), "--out", str(blocker)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot write the report" in lines[0]


def test_analyst_case_keeps_going_when_another_document_is_bad(tmp_path, models):
    root = write_case(tmp_path / "case", {
        "qa.txt": ("qa", "analyst", "According to Foreign Minister Ri, they asked for five of the eleven resolutions.\n"),
        "bad.txt": ("bad", "analyst", "")},
        sides={"US": ["Trump"], "DPRK": ["Foreign Minister Ri", "Ri"]})
    result = runner.invoke(app, [*ARGS, "run", str(root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["skipped"] == [{"path": "bad.txt", "error": "bad.txt: document is empty [E007]"}]


def test_option_ranges_are_checked(tmp_path):
    result = runner.invoke(app, [*ARGS, "run", str(HANOI), "--top-k", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and not (tmp_path / "report.json").exists()


@pytest.mark.slow  # loads the models before it fails
def test_unknown_classifier_precision_fails_in_one_line(tmp_path):
    result = runner.invoke(app, ["--classifier-precision", "fp16", "run", str(HANOI), "--out", str(tmp_path)])
    assert result.exit_code != 0 and not (tmp_path / "report.json").exists()
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "fp16" in message and "[E059]" in message
