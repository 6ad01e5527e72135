"""Event gold files: building a case folder from one, and scoring reports against it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from evaluation.event_scorer import main as scorer_main
from pipeline.errors import DataError
from pipeline.scoring.gold import (
    GoldCase,
    build_case,
    load_gold,
    map_gold_type,
    name_aliases,
    speaker_label,
)
from pipeline.scoring.event_score import score_report
from pipeline.manifest import load_manifest

SHARED_GOLD = Path(__file__).resolve().parents[1] / ".." / "shared" / "gold" / "singapore-2018.json"


def _gold() -> dict:
    return {
        "event": "Test summit",
        "event_id": "Test-Summit-2020",
        "date": "2020-01-02 (and later)",
        "notes": {"statement_index": "0-based"},
        "sides": [
            {"side": "US", "documents": [
                {"doc_id": "US-1", "speaker": "President Donald J. Trump", "date": "2020-01-02",
                 "source_url": "https://example.org/us1",
                 "statements": ["We had a great meeting.", "Sanctions stay until they denuclearize fully.",
                                "We will stop the war games.", "They will destroy a missile site."]},
            ]},
            {"side": "DPRK", "documents": [
                {"doc_id": "DPRK-1", "speaker": "Korean Central News Agency (official report)",
                 "date": "2020-01-03/2020-01-04", "source_url": "https://example.org/kcna",
                 "statements": ["The talks were sincere.", "Sanctions will be lifted step by step.",
                                "Trump said exercises will halt during dialogue."]},
            ]},
            {"side": "Joint", "documents": [
                {"doc_id": "JOINT-1", "speaker": "Joint Statement signed by President Trump and Chairman Kim",
                 "date": "2020-01-02", "source_url": "https://example.org/joint",
                 "statements": ["Both sides will build a new relationship.", "The talks were sincere and thorough."]},
            ]},
        ],
        "divergences": [
            {"id": "G-D1", "topic": "Sanctions", "type": "contradiction",
             "side_a": {"side": "US", "doc_id": "US-1", "statement_index": 1, "claim": "..."},
             "side_b": {"side": "DPRK", "doc_id": "DPRK-1", "statement_index": 1, "claim": "..."}},
            {"id": "G-D2", "topic": "War games", "type": "omission",
             "side_a": {"side": "US", "doc_id": "US-1", "statement_index": 2, "claim": "..."},
             "side_b": None, "omitting_side": "Joint (the signed JOINT-1 text)"},
            {"id": "G-D3", "topic": "Missile site", "type": "scope / quantity",
             "side_a": {"side": "US", "doc_id": "US-1", "statement_index": 3, "claim": "..."},
             "side_b": {"side": "Joint", "doc_id": "JOINT-1", "statement_index": 0, "claim": "..."}},
        ],
        "agreements": [
            {"topic": "Tone", "side_a_claim": "...", "side_b_claim": "...",
             "side_a_ref": {"doc_id": "DPRK-1", "statement_index": 0},
             "side_b_ref": {"doc_id": "JOINT-1", "statement_index": 1}},
            {"topic": "Exercises", "side_a_claim": "...", "side_b_claim": "...",
             "side_a_ref": {"doc_id": "US-1", "statement_index": 2},
             "side_b_ref": {"doc_id": "DPRK-1", "statement_index": 2}},
        ],
    }


@pytest.fixture()
def built(tmp_path):
    path = tmp_path / "gold.json"
    path.write_text(json.dumps(_gold()), encoding="utf-8")
    event = load_gold(path)
    case = build_case(event, tmp_path / "case")
    return event, case, path


def _claim(case: GoldCase, doc_id: str, index: int, *, part: slice = slice(None), cid: str | None = None) -> dict:
    """A report claim over a gold statement (or a part of it), as the pipeline would emit it."""
    span = case.spans[(doc_id, index)]
    text = (case.root / f"{case.doc_ids[doc_id]}.txt").read_text(encoding="utf-8")
    start, end = range(span.start, span.end)[part][0], range(span.start, span.end)[part][-1] + 1
    return {"id": cid or f"{case.doc_ids[doc_id]}:s{index}", "doc_id": case.doc_ids[doc_id], "side": span.side,
            "claimer": "x", "text": text[start:end], "start": start, "end": end, "entities": [], "frame": {}}


def _div(did: str, dtype: str, claims: list[dict], score: float, sides: list[str] | None = None) -> dict:
    return {"id": did, "type": dtype, "topic": "t1", "claims": [c["id"] for c in claims],
            "sides": sides or list(dict.fromkeys(c["side"] for c in claims)), "score": score, "explanation": ""}


def _report(case: GoldCase, claims: list[dict], divergences: list[dict]) -> dict:
    return {"schema_version": 1, "case": {"id": case.case_id}, "documents": [], "claims": claims,
            "divergences": divergences}


# --- building the case ---------------------------------------------------------------------


def test_case_folder_is_a_valid_case_with_statement_spans(built):
    event, case, _ = built
    spec = load_manifest(case.root)
    assert spec.id == "test-summit-2020" and spec.date == "2020-01-02"
    assert [d.id for d in spec.documents] == ["us-1", "dprk-1", "joint-1"]
    assert {d.id: d.date for d in spec.documents}["dprk-1"] == "2020-01-03"
    for doc in event.documents:
        text = (case.root / f"{case.doc_ids[doc.doc_id]}.txt").read_text(encoding="utf-8")
        assert text.splitlines()[0] == speaker_label(doc.speaker) + ":"
        for i, statement in enumerate(doc.statements):
            span = case.spans[(doc.doc_id, i)]
            assert text[span.start:span.end] == statement
        # one paragraph per statement
        assert text.split(":\n", 1)[1].strip().split("\n\n") == list(doc.statements)


def test_case_toml_sides_and_aliases(built):
    _, case, _ = built
    manifest = tomllib.loads((case.root / "case.toml").read_text(encoding="utf-8"))
    aliases = {name: side["aliases"] for name, side in manifest["sides"].items()}
    assert aliases["US"] == ["Donald J. Trump", "Donald Trump", "Trump"]
    assert aliases["DPRK"] == ["Korean Central News Agency", "KCNA"]
    assert aliases["Joint"] == ["Joint Statement"]
    assert {d["speaker"] for d in manifest["documents"]} == {
        "President Donald J. Trump", "Korean Central News Agency", "Joint Statement"}


def test_ingest_reads_each_document_as_one_speaker_turn(built):
    from pipeline.stages.ingest import read_case

    event, case, _ = built
    documents, errors = read_case(load_manifest(case.root))
    assert not errors
    for doc in documents:
        statements = [t for t in doc.turns if t.role == "statement"]
        assert len(statements) == 1 and statements[0].speaker == doc.spec.speaker
        gold = next(d for d in event.documents if case.doc_ids[d.doc_id] == doc.id)
        assert doc.text[statements[0].start:statements[0].end].startswith(gold.statements[0])


def test_labels_and_aliases_from_speaker_names():
    assert speaker_label("President Donald J. Trump") == "PRESIDENT DONALD J. TRUMP"
    assert speaker_label("Secretary of State Michael R. Pompeo") == "SECRETARY OF STATE MICHAEL R. POMPEO"
    assert speaker_label("Foreign Minister Ri Yong Ho (with Vice Minister Choe)") == "FOREIGN MINISTER RI YONG HO"
    assert name_aliases("Secretary of State Michael R. Pompeo") == ["Michael R. Pompeo", "Michael Pompeo", "Pompeo"]
    assert name_aliases("Foreign Minister Ri Yong Ho") == ["Ri Yong Ho"]
    assert map_gold_type("scope / quantity") == ("scope", "quantity")
    assert map_gold_type("Added condition") == ("added_condition",)
    assert map_gold_type("framing") == ()


def test_bad_gold_file_names_the_file(tmp_path):
    bad = _gold()
    bad["divergences"][0]["side_b"]["statement_index"] = 9
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_gold(path)
    assert str(err.value).startswith(f"{path}: malformed event gold file: G-D1: statement_index 9 out of range")
    assert err.value.code == "E101"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="malformed event gold file"):
        load_gold(path)
    with pytest.raises(DataError, match=r"E100"):
        load_gold(tmp_path / "missing.json")


# --- scoring ------------------------------------------------------------------------------


def test_perfect_report_scores_full_marks(built):
    event, case, _ = built
    c = {k: _claim(case, *k) for k in [("US-1", 1), ("DPRK-1", 1), ("US-1", 2), ("US-1", 3), ("JOINT-1", 0),
                                        ("DPRK-1", 0), ("JOINT-1", 1), ("DPRK-1", 2)]}
    divs = [
        _div("d1", "contradiction", [c[("US-1", 1)], c[("DPRK-1", 1)]], 0.9),
        _div("d2", "omission", [c[("US-1", 2)]], 0.8, sides=["US", "Joint"]),
        _div("d3", "quantity", [c[("US-1", 3)], c[("JOINT-1", 0)]], 0.7),
        _div("a1", "agreement", [c[("DPRK-1", 0)], c[("JOINT-1", 1)]], 0.9),
        _div("a2", "agreement", [c[("US-1", 2)], c[("DPRK-1", 2)]], 0.9),
    ]
    score = score_report(event, case, _report(case, list(c.values()), divs))
    m = score.metrics()
    assert (m["found"], m["type_correct"], m["agreements_recalled"], m["unmatched_flagged"]) == (3, 3, 2, 0)
    assert m["recall"] == m["type_accuracy"] == m["agreement_recall"] == 1.0


def test_partial_claims_wrong_types_and_false_flags(built):
    event, case, _ = built
    us_half = _claim(case, "US-1", 1, part=slice(10, None), cid="u1b")  # a claim over part of a statement
    dprk = _claim(case, "DPRK-1", 1)
    hello_us, hello_dprk = _claim(case, "US-1", 0), _claim(case, "DPRK-1", 0)
    joint = _claim(case, "JOINT-1", 1)
    divs = [
        _div("d1", "scope", [us_half, dprk], 0.6),  # found, wrong type
        _div("d1-agree", "agreement", [us_half, dprk], 0.95),  # the flagged entry is judged, not this one
        _div("x", "attribution", [hello_us, hello_dprk], 0.5),  # matches nothing in gold
        _div("a1", "contradiction", [hello_dprk, joint], 0.4),  # a gold agreement flagged as contradiction
    ]
    score = score_report(event, case, _report(case, [us_half, dprk, hello_us, hello_dprk, joint], divs))
    items = {i.id: i for i in score.items}
    assert items["G-D1"].found and items["G-D1"].report_id == "d1" and not items["G-D1"].type_correct
    assert not items["G-D2"].found and not items["G-D3"].found
    assert items["A1"].found and items["A1"].report_type == "contradiction" and not items["A1"].type_correct
    m = score.metrics()
    assert (m["found"], m["found_flagged"], m["type_correct"], m["agreements_recalled"]) == (1, 1, 0, 0)
    # "x" matches no gold item; "a1" matches a gold agreement, so it is not counted as unmatched.
    assert score.unmatched_ids == ["x"] and m["report_flagged"] == 3
    assert m["unmatched_per_gold_divergence"] == pytest.approx(1 / 3, abs=1e-4)


def test_found_as_agreement_counts_for_recall_not_flagged_recall(built):
    event, case, _ = built
    a, b = _claim(case, "US-1", 1), _claim(case, "DPRK-1", 1)
    score = score_report(event, case, _report(case, [a, b], [_div("d", "agreement", [a, b], 0.9)]))
    m = score.metrics()
    assert (m["found"], m["found_flagged"], m["type_correct"]) == (1, 0, 0)


def test_omission_needs_the_silent_side(built):
    event, case, _ = built
    war = _claim(case, "US-1", 2)
    kcna = _claim(case, "DPRK-1", 2)
    joint = _claim(case, "JOINT-1", 0)
    # Pairing the asserted statement with a side that does address it is not the gold omission.
    wrong = score_report(event, case, _report(case, [war, kcna], [_div("p", "scope", [war, kcna], 0.9),
                                                                  _div("o", "omission", [war], 0.8, ["US", "DPRK"])]))
    assert not next(i for i in wrong.items if i.id == "G-D2").found
    right = score_report(event, case, _report(case, [war, joint], [_div("o", "omission", [war], 0.8, ["US", "Joint"]),
                                                                   _div("p", "scope", [war, joint], 0.3)]))
    item = next(i for i in right.items if i.id == "G-D2")
    assert item.found and item.report_id == "o" and item.type_correct


def test_report_of_another_case_is_refused(built):
    event, case, _ = built
    with pytest.raises(DataError, match="E102"):
        score_report(event, case, {"case": {"id": "other"}, "claims": [], "divergences": []})
    stray = dict(_claim(case, "US-1", 0), doc_id="elsewhere")
    with pytest.raises(DataError, match="documents not in the case: elsewhere"):
        score_report(event, case, _report(case, [stray], []))


def test_scorer_script_scores_a_given_report(built, tmp_path, capsys):
    event, case, gold_path = built
    a, b = _claim(case, "US-1", 1), _claim(case, "DPRK-1", 1)
    report_path = tmp_path / "report.json"
    report_path.write_text(json.dumps(_report(case, [a, b], [_div("d1", "contradiction", [a, b], 0.9)])))
    out = tmp_path / "res" / "score.json"
    assert scorer_main([str(gold_path), "--case-dir", str(case.root), "--report", str(report_path),
                        "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "G-D1" in printed and "contradiction" in printed
    result = json.loads(out.read_text())
    assert result["metrics"]["found"] == 1 and result["metrics"]["type_accuracy"] == 1.0
    assert [i["found"] for i in result["items"] if i["kind"] == "divergence"] == [True, False, False]


def test_scorer_script_reports_bad_gold_in_one_line(tmp_path, capsys):
    assert scorer_main([str(tmp_path / "nope.json"), "--report", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.json" in err and "E100" in err


@pytest.mark.skipif(not SHARED_GOLD.is_file(), reason="../shared/gold/singapore-2018.json not available")
def test_shared_gold_event_builds(tmp_path):
    event = load_gold(SHARED_GOLD)
    case = build_case(event, tmp_path / "sg")
    assert len(event.divergences) == 7 and len(event.agreements) == 5
    assert all(i.types for i in event.divergences), "every gold type maps to one of ours"
    omissions = {i.id: i.omitting_sides for i in event.divergences if i.b is None}
    assert omissions == {"SGP-D1": ("Joint",), "SGP-D6": ("DPRK", "Joint")}
    spec = load_manifest(case.root)
    assert {d.side for d in spec.documents} == {"US", "DPRK", "Joint"}
