"""A small, realistic two-side report folder for the review and label tests.

Built from transcript turns so that every offset is computed, not typed: claims'
``start``/``end`` index the document text and sentences carry their turn, as the
pipeline writes them. One DPRK turn carries hostile markup, to check escaping.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CASE_ID = "hanoi-2019"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'

US_TURNS = [
    ("THE PRESIDENT", [
        "We had a very productive time with Chairman Kim.",
        "Basically, they wanted the sanctions lifted in their entirety, and we couldn't do that.",
        "Sometimes you have to walk, and this was just one of those times.",
    ]),
    ("Q", ["Mr. President, what was the offer on Yongbyon?"]),
    ("THE PRESIDENT", [
        "He would dismantle Yongbyon, but we wanted more than that.",
        "We have a very good relationship and we'll see what happens.",
    ]),
]  # fmt: skip

DPRK_TURNS = [
    ("FOREIGN MINISTER RI", [
        "We proposed a realistic step at this summit.",
        "We asked for partial lifting of sanctions, not all of them, only the five resolutions adopted in 2016 and 2017.",
        f"In return we proposed to dismantle all nuclear material production facilities in the Yongbyon area. {IMG}",
        f"The US side insisted on one more measure {SCRIPT} beyond Yongbyon.",
        "Our principled stand will remain invariable.",
    ]),
]  # fmt: skip


def _document(doc_id: str, side: str, speaker: str, turns: list[tuple[str, list[str]]]) -> dict[str, Any]:
    text, turn_spans, sentences = "", [], []
    for t, (label, sents) in enumerate(turns):
        text += f"{label}: "
        start = len(text)
        for i, sentence in enumerate(sents):
            if i:
                text += " "
            sentences.append({"start": len(text), "end": len(text) + len(sentence), "turn": t})
            text += sentence
        turn_spans.append({"speaker": label, "role": "statement", "start": start, "end": len(text), "label": label})
        text += "\n\n"
    return {
        "id": doc_id,
        "side": side,
        "speaker": speaker,
        "date": "2019-02-28",
        "source": "https://example.org/" + doc_id,
        "path": doc_id + ".txt",
        "sha256": "0" * 64,
        "text": text,
        "turns": turn_spans,
        "sentences": sentences,
    }


def _claim(claim_id: str, doc: dict[str, Any], fragment: str, claimer: str) -> dict[str, Any]:
    start = doc["text"].index(fragment)
    return {
        "id": claim_id,
        "doc_id": doc["id"],
        "side": doc["side"],
        "claimer": claimer,
        "speaker": claimer,
        "text": fragment,
        "start": start,
        "end": start + len(fragment),
        "score": 0.9,
        "entities": [],
        "frame": {},
    }


def report_data() -> dict[str, Any]:
    us = _document("us-press-conference", "US", "Donald J. Trump", US_TURNS)
    kp = _document("dprk-press-conference", "DPRK", "Ri Yong Ho", DPRK_TURNS)
    claims = [
        _claim("us-1", us, "they wanted the sanctions lifted in their entirety, and we couldn't do that.", "Donald J. Trump"),
        _claim("us-2", us, "He would dismantle Yongbyon, but we wanted more than that.", "Donald J. Trump"),
        _claim("us-3", us, "Sometimes you have to walk, and this was just one of those times.", "Donald J. Trump"),
        _claim("kp-1", kp, "We asked for partial lifting of sanctions, not all of them, only the five resolutions adopted in 2016 and 2017.", "Ri Yong Ho"),  # noqa: E501
        _claim("kp-2", kp, "In return we proposed to dismantle all nuclear material production facilities in the Yongbyon area.", "Ri Yong Ho"),  # noqa: E501
        _claim("kp-3", kp, f"The US side insisted on one more measure {SCRIPT} beyond Yongbyon.", f"Ri Yong Ho {IMG}"),
        _claim("kp-4", kp, "Our principled stand will remain invariable.", "Ri Yong Ho"),
    ]
    divergences = [
        # most confident first, as the pipeline lists them
        {"id": "div-yongbyon", "type": "contradiction", "topic": "Yongbyon", "claims": ["us-2", "kp-2"],
         "sides": ["US", "DPRK"], "score": 0.9, "explanation": "Offer on Yongbyon described differently.", "evidence": {}},
        {"id": "div-measure", "type": "omission", "topic": f"Extra demands {SCRIPT}", "claims": ["kp-3"],
         "sides": ["DPRK"], "score": 0.7, "explanation": f"Only one side mentions it {IMG}",
         "evidence": {"highlights": {"kp-3": [[41, 66]]}}},
        {"id": "div-walk", "type": "attribution", "topic": "Who ended the talks", "claims": ["us-3", "kp-4"],
         "sides": ["US", "DPRK"], "score": 0.6, "explanation": "Each side says the other broke off.", "evidence": {}},
        {"id": "div-sanctions", "type": "scope", "topic": "Sanctions", "claims": ["us-1", "kp-1"],
         "sides": ["US", "DPRK"], "score": 0.55, "explanation": "All sanctions vs part of them.",
         "evidence": {"probs": {"contradiction": 0.4, "scope": 0.45, "agreement": 0.15},
                      # differing words, as offsets into each claim's text
                      "highlights": {"us-1": [[33, 50]], "kp-1": [[13, 20], [43, 58]]}}},
    ]  # fmt: skip
    return {
        "schema_version": 1,
        "case": {"id": CASE_ID, "title": "Second US-DPRK summit, Hanoi", "date": "2019-02-28"},
        "documents": [us, kp],
        "claims": claims,
        "divergences": divergences,
    }


# Queue order: the entropy of div-sanctions' probs is 0.92; then 1 - score.
EXPECTED_QUEUE = ["div-sanctions", "div-walk", "div-measure", "div-yongbyon"]


def write_report(root: Path, data: dict[str, Any] | None = None) -> Path:
    """Write ``report.json`` into ``root/<case id>`` and return that folder."""
    data = data if data is not None else report_data()
    folder = root / data["case"]["id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return folder
