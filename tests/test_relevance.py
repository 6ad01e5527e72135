"""Relevance to the case: off-topic claims are set aside (and said so), never omissions."""

from __future__ import annotations

import json

import numpy as np

from pipeline.stages.relevance import RelevanceConfig, assess_relevance
from pipeline.schema import Claim
from tests.conftest import write_case


def _claim(cid: str, side: str) -> Claim:
    return Claim(id=cid, doc_id=cid.split(":")[0], side=side, claimer=side, text=cid, start=0, end=1, score=0.9)


def test_claims_far_from_every_other_side_are_set_aside_unless_aligned():
    claims = [_claim("us:s0", "US"), _claim("us:s1", "US"), _claim("us:s2", "US"), _claim("ru:s0", "Russia")]
    vectors = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.9, 0.436], [0.9, 0.0, 0.436]])
    relevance = assess_relevance(claims, vectors, parties=["US", "Russia"], aligned={"us:s2"},
                                 config=RelevanceConfig(min_similarity=0.3))
    assert relevance.set_aside == ["us:s1"]  # s2 is as far, but the alignment paired it
    assert relevance.scores["us:s0"] > 0.8 and relevance.scores["ru:s0"] > 0.8
    section = relevance.to_json(claims)
    assert section["by_document"] == {"us": 1, "ru": 0}
    assert [c["id"] for c in section["claims"]] == ["us:s1"]


def test_nothing_is_set_aside_without_another_side_to_compare_with():
    claims = [_claim("us:s0", "US"), _claim("x:s0", "analyst")]
    relevance = assess_relevance(claims, np.eye(2), parties=["US", "Russia"])
    assert relevance.set_aside == []


US = ("THE PRESIDENT:  I proposed a summit with President Volkov in a third country this spring.\n\n"
      "I told him that the troops near the border of Norland must go back to their bases.\n\n"
      "Separately, the new vaccination centres opened in forty states and gave two million doses this week.\n\n"
      "The highway bill provides ninety billion dollars for bridges in rural counties.\n")
RU = ("PRESIDENT VOLKOV:  The American President suggested a personal meeting; we will consider the proposal.\n\n"
      "Our troops near the border of Norland are on our own territory, and they will stay there.\n")


def test_report_lists_off_topic_claims_and_flags_no_omission_for_them(tmp_path, models):
    from pipeline.render import write_report
    from pipeline.runner import analyse_case

    root = write_case(tmp_path / "case", {"us.txt": ("us", "US", US), "ru.txt": ("ru", "Russia", RU)},
                      sides={"US": ["The President"], "Russia": ["Volkov", "President Volkov"]})
    report = analyse_case(root, config=models.config, models=models)
    claims = {c.id: c.text for c in report.claims}
    aside = [claims[c.id] for c in report.set_aside.claims]
    assert any("vaccination centres" in t for t in aside) and any("highway bill" in t for t in aside)
    assert not any("summit" in t or "troops" in t for t in aside)
    assert report.set_aside.by_document["us"] == len(aside)
    omitted = [claims[d.claims[0]] for d in report.divergences if d.type == "omission"]
    assert not any("vaccination" in t or "highway" in t for t in omitted)
    out = write_report(report, tmp_path / "out")
    html = (out.parent / "report.html").read_text(encoding="utf-8")
    assert 'id="set-aside"' in html and "highway bill provides ninety billion" in html
    assert json.loads(out.read_text())["set_aside"]["min_similarity"] == 0.3
