"""The report model: one reader, one writer, the bytes of report.json unchanged."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from pipeline.errors import ReportError
from pipeline.report import (Report, ReportClaim, ReportDivergence, ReportDocument, ReportEntity, ReportFrame,
                             ReportSentence, ReportTurn)
from pipeline.schema import Claim, Divergence, Document, DocumentSpec, Entity, Frame, Sentence, Turn

# written by `divergence run` before the report had a model (a Latin-1 document: a warning;
# a missing one: skipped), so a round trip proves the bytes did not change
REAL = Path(__file__).parent / "fixtures" / "report-harbour-2031.json"


def _lean() -> dict:
    """CONTRACTS §3 alone, with a null, an int score and a key no version of ours writes."""
    return {
        "schema_version": 1,
        "case": {"id": "lean", "title": None},
        "documents": [{"id": "a", "side": "US"}, {"id": "b", "side": "DPRK", "speaker": None}],
        "claims": [
            {"id": "a:s0", "doc_id": "a", "side": "US", "claimer": "X", "text": "All of them.", "start": 0, "end": 12,
             "score": 1, "entities": [], "frame": {}},
            {"id": "b:s0", "doc_id": "b", "side": "DPRK", "claimer": "Y", "text": "Five of them.", "start": 0,
             "end": 13, "entities": [{"text": "Five", "label": "CARDINAL", "canonical": "5", "start": 0, "end": 4}],
             "frame": {"quantities": [{"text": "Five", "value": 5.0}], "scope": ["part"]}},
        ],
        "divergences": [{"id": "d1", "type": "quantity", "topic": "t1", "claims": ["a:s0", "b:s0"],
                         "sides": ["US", "DPRK"], "score": 0.5, "explanation": "all vs five",
                         "reviewer_note": "kept as written"}],
    }


def test_a_real_report_round_trips_byte_identical(tmp_path: Path) -> None:
    text = REAL.read_text(encoding="utf-8")
    report = Report.read(REAL)
    assert report.dumps() == text
    assert report.to_dict() == json.loads(text)
    # what was read is typed: numbers are numbers, nested records are models
    assert isinstance(report.claims[0], ReportClaim) and isinstance(report.claims[0].frame, ReportFrame)
    assert report.summary.claims == len(report.claims) == 13
    assert report.skipped[0].path == "n-2-missing.txt" and report.skipped[0].error.endswith("[E004]")
    assert "[W001]" in report.warnings[0] and report.models.judge == "judge-v3" and report.config.top_k == 8


def test_the_models_declare_every_key_the_records_write_in_order() -> None:
    """An undeclared key would still be kept, but written at the end: the bytes would move."""
    spec = DocumentSpec(id="a", side="US", path="a.txt", speaker="X")
    doc = Document(spec=spec, text="X: All.", sha256="0" * 64, turns=[Turn("X", "statement", 3, 7, "X")],
                   sentences=[Sentence(3, 7, 0)])
    claim = Claim(id="a:s0", doc_id="a", side="US", claimer="X", text="All.", start=3, end=7, score=0.5,
                  entities=[Entity("All", "SCOPE", "all", 3, 6)], frame=Frame(scope=["all"]))
    divergence = Divergence(id="d1", type="scope", topic="t1", claims=["a:s0", "b:s0"], sides=["US", "DPRK"],
                            score=0.5, explanation="all vs part", evidence={"probs": {"scope": 0.5}})
    for model, record in ((ReportDocument, doc.to_json(include_text=True)), (ReportClaim, claim.to_json()),
                          (ReportDivergence, divergence.to_json()), (ReportFrame, asdict(Frame())),
                          (ReportEntity, asdict(claim.entities[0])), (ReportTurn, asdict(doc.turns[0])),
                          (ReportSentence, asdict(doc.sentences[0]))):
        assert list(model.model_fields) == list(record), model.__name__
        assert json.dumps(model.model_validate(record).model_dump(exclude_unset=True)) == json.dumps(record)
    written = ["schema_version", "case", "documents", "claims", "divergences", "topics", "claim_topics", "summary",
               "set_aside", "skipped", "warnings", "models", "config"]
    assert [k for k in Report.model_fields if k != "timings"] == written == list(json.loads(REAL.read_text()))


def test_absent_keys_stay_absent_nulls_stay_null_and_numbers_keep_their_kind() -> None:
    data = _lean()
    report = Report.from_data(data)
    assert report.to_dict() == data
    assert json.dumps(report.to_dict()) == json.dumps(data)  # same key order too (declared keys: the model's)
    assert '"score": 1,' in report.dumps() and '"score": 1.0' not in report.dumps()
    assert report.claims[0].frame == ReportFrame() and report.divergences[0].explanation == "all vs five"
    # defaults for readers, never written
    assert report.documents[0].turns == [] and report.summary is None and report.warnings == []


def test_timings_are_kept_in_memory_but_never_written() -> None:
    report = Report.model_validate({**_lean(), "timings": {"spacy": 1.25}})
    assert report.timings == {"spacy": 1.25}
    assert "timings" not in report.dumps() and "timings" not in report.to_dict()


def test_evidence_accessors_keep_only_well_formed_values() -> None:
    d = ReportDivergence.model_validate({
        "id": "d", "type": "scope", "claims": ["a", "b"],
        "evidence": {"probs": {"scope": 0.75, "agreement": 1, "note": "x", "flag": True},
                     "highlights": {"a": [[0, 3], [5], ["x", 2]], "b": "nope"}, "omitting_sides": ["DPRK"]}})
    assert d.probs == {"scope": 0.75, "agreement": 1.0}
    assert d.highlights == {"a": [(0, 3)]}
    assert d.omitting_sides == ["DPRK"]
    assert ReportDivergence.model_validate({"id": "d", "type": "x", "claims": ["a"]}).highlights == {}


@pytest.mark.parametrize(("mutate", "detail"), [
    (lambda d: d["claims"][0].__setitem__("start", "0"), "claims[0].start: Input should be a valid integer"),
    (lambda d: d["claims"][0].__setitem__("score", True), "claims[0].score: Input should be a number"),
    (lambda d: d["divergences"][0].__setitem__("claims", ["a:s0", "ghost"]),
     "divergence 'd1' refers to unknown claim 'ghost'"),
    (lambda d: d["divergences"][0].__setitem__("claims", []), "divergences[0].claims: List should have at least 1"),
    (lambda d: d["divergences"][0].__setitem__("sides", 5), "divergences[0].sides: Input should be a valid list"),
    (lambda d: d["claims"].append(dict(d["claims"][0])), "duplicate claim id 'a:s0'"),
    (lambda d: d.pop("case"), "case: Field required"),
    (lambda d: d["case"].__setitem__("id", ""), "case.id: String should have at least 1 character"),
    (lambda d: d.__setitem__("schema_version", 2), "schema_version: written by a newer divergence"),
    (lambda d: d["claims"][1]["frame"].__setitem__("polarity", "maybe"), "claims[1].frame.polarity: Input should be"),
])
def test_a_malformed_report_is_one_line_naming_the_file(tmp_path: Path, mutate, detail: str) -> None:
    data = copy.deepcopy(_lean())
    mutate(data)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ReportError) as err:
        Report.read(path)
    message = str(err.value)
    assert message.startswith(f"{path}: malformed report.json: {detail}") and message.endswith("[E090]")
    assert "\n" not in message and err.value.code == "E090"


@pytest.mark.parametrize(("text", "detail"), [
    ('{"case": {"id": "x"}, "claims": [', "Expecting value"),
    ("[1, 2]", "the top level is not an object"),
    ("[" * 100_000 + "]" * 100_000, "maximum recursion depth"),
    (b"\xff\xfe{}", "codec can't decode"),
])
def test_an_unreadable_report_is_one_line_naming_the_file(tmp_path: Path, text, detail: str) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ReportError, match=r"\[E090\]$") as err:
        Report.read(path)
    assert str(err.value).startswith(f"{path}: malformed report.json: ") and detail in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ReportError, match=r"nowhere.json: malformed report.json: cannot read it: No such file"):
        Report.read(tmp_path / "nowhere.json")


def test_write_report_writes_both_files_from_one_report(tmp_path: Path) -> None:
    from pipeline.render import write_report

    report = Report.read(REAL)
    out = write_report(report, tmp_path / "out")
    assert out == tmp_path / "out" / "report.json"
    assert out.read_text(encoding="utf-8") == REAL.read_text(encoding="utf-8")
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "harbour" in page.lower()
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html", "report.json"]  # no temp files left


@pytest.mark.slow
def test_the_pipeline_report_reads_back_as_written(tmp_path: Path, models) -> None:
    from tests.conftest import write_case

    from pipeline.render import write_report
    from pipeline.runner import analyse_case

    us = "THE PRESIDENT: They wanted all of the sanctions lifted, and we could not do that.\n"
    kp = "FOREIGN MINISTER RI: We asked for the lifting of five of the eleven resolutions only.\n"
    root = write_case(tmp_path / "case", {"us.txt": ("us", "US", us), "kp.txt": ("kp", "DPRK", kp)})
    report = analyse_case(root, config=models.config, models=models)
    assert isinstance(report, Report) and report.timings and report.summary.documents == 2
    path = write_report(report, tmp_path / "out")
    text = path.read_text(encoding="utf-8")
    assert text == report.dumps() and Report.read(path).dumps() == text
    assert "timings" not in json.loads(text)
