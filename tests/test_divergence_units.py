"""`type_pairs` and `finalise` on hand-made claims: which type a pair gets, what its explanation
says, how it is scored and capped, and the ids reviewers' labels hang on. No model is loaded:
the pair classifier and the judge are stand-ins that return fixed probabilities."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pipeline.schema import AlignedPair, Claim, Divergence, Entity, Frame
from pipeline.stages.align import Alignment
from pipeline.stages.divergence import DivergenceConfig, finalise, type_pairs
from pipeline.stages.judge import above_bar

START = 100  # claims sit mid-document: highlights must be relative to the claim


def claim(cid: str, side: str, text: str, *, cues=(), quantities=(), predicates=("demand",), condition=None,
          entities=(), score: float = 1.0) -> Claim:
    """A claim at offset START; cue and quantity offsets are given within ``text``."""
    def at(item: dict) -> dict:
        i = text.index(item["text"])
        return {**item, "start": START + i, "end": START + i + len(item["text"])}

    frame = Frame(predicates=list(predicates), condition=condition, cues=[at(c) for c in cues],
                  quantities=[at(q) for q in quantities])
    ents = [Entity(text=t, label=label, canonical=canon, start=START, end=START + len(t)) for t, label, canon in entities]
    return Claim(id=cid, doc_id=side.lower(), side=side, claimer=side, text=text, start=START, end=START + len(text),
                 score=score, entities=ents, frame=frame)


ENTIRETY = claim("us-1", "US", "They wanted the sanctions lifted in their entirety.",
                 cues=[{"kind": "scope:all", "text": "in their entirety"}])
FIVE = claim("d-1", "DPRK", "We asked for five of the eleven resolutions.",
             quantities=[{"text": "five of the eleven", "value": 5.0, "of": 11.0, "unit": "resolution"}])
WALKED = claim("us-2", "US", "The President walked away from the table.", predicates=("walk_away",))
LEFT = claim("d-2", "DPRK", "The American side left the meeting early.", predicates=("walk_away",))


def alignment(*pairs: tuple[Claim, Claim, float], topic: str | None = None) -> Alignment:
    aligned = [AlignedPair(a=a.id, b=b.id, similarity=s, shared_entities=("SANCTIONS",), topic=topic)
               for a, b, s in pairs]
    ids = {c.id for a, b, _ in pairs for c in (a, b)}
    return Alignment(pairs=aligned, topic_of={i: "t-sanctions" for i in ids}, topic_names={"t-sanctions": "Sanctions"})


def by_id(*claims: Claim) -> dict[str, Claim]:
    return {c.id: c for c in claims}


class FixedScorer:
    """A pair classifier that answers (entailment, neutral, contradiction) from a table and
    records what it was asked."""

    version = "fake-nli"

    def __init__(self, forward, backward=None) -> None:
        self.forward, self.backward = forward, backward or forward
        self.calls: list[list[tuple[str, str]]] = []

    def predict_proba(self, pairs, *, batch_size: int = 64) -> np.ndarray:
        self.calls.append(list(pairs))
        half = len(pairs) // 2
        return np.array([self.forward] * half + [self.backward] * half, dtype=float)


# --- the hand rules (no judge) ------------------------------------------------------------------


def test_frames_name_the_type_and_say_what_differs():
    [flag] = type_pairs(by_id(ENTIRETY, FIVE), alignment((ENTIRETY, FIVE, 0.8)), scorer=None)
    assert (flag.type, flag.claims, flag.sides, flag.topic) == ("quantity", ["us-1", "d-1"], ["US", "DPRK"], "t-sanctions")
    assert flag.explanation == "quantity: 'in their entirety' vs 'five of the eleven'"
    # strength 0.9 x similarity factor 1 x salience 1 x 0.9 without a classifier
    assert flag.score == pytest.approx(0.81)
    assert flag.evidence == {"similarity": 0.8, "shared_entities": ["SANCTIONS"],
                             "highlights": {"us-1": [[33, 50]], "d-1": [[13, 31]]}}
    assert ENTIRETY.text[33:50] == "in their entirety" and FIVE.text[13:31] == "five of the eleven"
    assert flag.id == ""  # ids are given by finalise, once every flag is known


def test_the_pairs_own_topic_wins_over_the_claims_topic():
    [flag] = type_pairs(by_id(ENTIRETY, FIVE), alignment((ENTIRETY, FIVE, 0.8), topic="t-other"), scorer=None)
    assert flag.topic == "t-other"


def test_classifier_contradiction_flags_a_pair_the_frames_cannot_explain():
    scorer = FixedScorer([0.05, 0.15, 0.8])
    [flag] = type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.6)), scorer=scorer)
    assert flag.type == "contradiction"
    assert flag.explanation == "contradiction: the pair classifier gives 80% that both cannot be true"
    assert flag.score == pytest.approx(0.85 * 0.8 * (0.5 + 0.5 * 0.6 / 0.8))
    assert flag.evidence["probs"] == {"entailment": 0.05, "neutral": 0.15, "contradiction": 0.8}
    assert flag.evidence["model"] == "fake-nli"
    # the words one side uses and the other does not
    marked = {cid: [c.text[s:e] for s, e in spans] for cid, spans in flag.evidence["highlights"].items()
              for c in (WALKED, LEFT) if c.id == cid}
    assert marked == {"us-2": ["President", "walked", "away", "from", "table"],
                      "d-2": ["American", "side", "left", "meeting", "early"]}
    # one call, both directions: a -> b then b -> a
    assert scorer.calls == [[(WALKED.text, LEFT.text), (LEFT.text, WALKED.text)]]


def test_a_contradiction_needs_the_pair_to_be_about_the_same_thing():
    scorer = FixedScorer([0.05, 0.15, 0.8])
    assert type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.45)), scorer=scorer) == []


def test_agreement_needs_entailment_both_ways():
    both = type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.6)), scorer=FixedScorer([0.9, 0.08, 0.02]))
    assert [(f.type, f.explanation) for f in both] == [
        ("agreement", "agreement: the pair classifier gives 90% entailment")]
    assert both[0].score == pytest.approx(0.9 * (0.5 + 0.5 * 0.6 / 0.8))
    assert both[0].evidence["highlights"] == {}
    # entailed one way only (mean 0.5): not an agreement, and at 0.6 not a near-paraphrase either
    one_way = FixedScorer([0.9, 0.05, 0.05], backward=[0.1, 0.8, 0.1])
    assert type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.6)), scorer=one_way) == []


def test_near_paraphrases_agree_unless_the_classifier_sees_a_contradiction():
    neutral = FixedScorer([0.3, 0.5, 0.2])
    [flag] = type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.8)), scorer=neutral)
    assert flag.type == "agreement" and flag.explanation.startswith("agreement: near-paraphrases (similarity 0.80)")
    assert flag.score == pytest.approx(0.6 * 0.8 * (1 - 0.2))
    contradicting = FixedScorer([0.1, 0.1, 0.8])
    assert [f.type for f in type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.8)), scorer=contradicting)] \
        == ["contradiction"]


def test_without_a_classifier_only_close_pairs_agree_and_modestly():
    [flag] = type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.8)), scorer=None)
    assert flag.type == "agreement" and flag.score == pytest.approx(0.4)
    assert flag.explanation.endswith("no pair classifier loaded") and "probs" not in flag.evidence
    assert type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.74)), scorer=None) == []


def test_a_strong_contradiction_turns_a_one_sided_condition_into_a_contradiction():
    cond_text = "If the sanctions are lifted, we will dismantle Yongbyon."
    conditional = claim("d-3", "DPRK", cond_text, predicates=("dismantle",), condition="If the sanctions are lifted",
                        cues=[{"kind": "condition", "text": "If the sanctions are lifted"}],
                        entities=[("Yongbyon", "FACILITY", "YONGBYON")])
    plain = claim("us-3", "US", "They offered to dismantle Yongbyon.", predicates=("dismantle",),
                  entities=[("Yongbyon", "FACILITY", "YONGBYON")])
    pair = alignment((plain, conditional, 0.8))
    [mild] = type_pairs(by_id(plain, conditional), pair, scorer=FixedScorer([0.2, 0.5, 0.3]))
    assert mild.type == "added_condition"
    assert mild.explanation == "added condition: DPRK adds 'If the sanctions are lifted'; US states none"
    assert mild.evidence["highlights"] == {"d-3": [[0, 27]]}
    [strong] = type_pairs(by_id(plain, conditional), pair, scorer=FixedScorer([0.05, 0.05, 0.9]))
    assert strong.type == "contradiction"
    assert strong.explanation == ("contradiction: the pair classifier gives 90% that both cannot be true; "
                                  "added condition: DPRK adds 'If the sanctions are lifted'; US states none")


def test_precomputed_probabilities_are_used_without_asking_the_classifier_again():
    scorer = FixedScorer([0.9, 0.05, 0.05])
    probs = (np.array([[0.05, 0.15, 0.8]]), np.array([[0.05, 0.15, 0.8]]))
    [flag] = type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.6)), scorer=scorer, probs=probs)
    assert flag.type == "contradiction" and scorer.calls == []


def test_flags_below_the_minimum_score_are_dropped():
    pair = alignment((WALKED, LEFT, 0.8))
    assert [f.score for f in type_pairs(by_id(WALKED, LEFT), pair, scorer=None)] == [pytest.approx(0.4)]
    assert type_pairs(by_id(WALKED, LEFT), pair, scorer=None, config=DivergenceConfig(min_score=0.45)) == []


def test_each_claim_keeps_its_strongest_flags_of_each_kind():
    words = ("early", "abruptly", "suddenly", "quickly", "at once", "in haste")
    others = [claim(f"d-{i}", "DPRK", f"The American side left the meeting {w}.", predicates=("walk_away",))
              for i, w in enumerate(words)]
    # WALKED against six claims, more similar first: three contradict it, three agree with it
    contradiction, agreement = [0.05, 0.15, 0.8], [0.9, 0.05, 0.05]
    rows = np.array([contradiction] * 3 + [agreement] * 3)
    pairs = alignment(*[(WALKED, o, s) for o, s in zip(others, (0.8, 0.75, 0.7, 0.8, 0.75, 0.7))])
    flags = type_pairs(by_id(WALKED, *others), pairs, scorer=FixedScorer(agreement), probs=(rows, rows))
    # two of each kind: an agreement does not use up a claim's place for a divergence
    assert sorted((f.type, f.claims[1]) for f in flags) == [
        ("agreement", "d-3"), ("agreement", "d-4"), ("contradiction", "d-0"), ("contradiction", "d-1")]
    cap_one = type_pairs(by_id(WALKED, *others), pairs, scorer=FixedScorer(agreement), probs=(rows, rows),
                         config=DivergenceConfig(max_flags_per_claim=1))
    assert sorted((f.type, f.claims[1]) for f in cap_one) == [("agreement", "d-3"), ("contradiction", "d-0")]


# --- the judge path -------------------------------------------------------------------------------


class FixedJudge:
    """A judge that answers a fixed verdict per pair, in alignment order."""

    version = "judge-fake"
    thresholds = {"divergence": 0.5, "agreement": 0.6, "omission": 0.5}

    def __init__(self, verdicts: list[dict]) -> None:
        self.verdicts = verdicts
        self.seen: list = []

    def judge_pairs(self, contexts):
        self.seen = list(contexts)
        return self.verdicts


def test_the_judge_decides_and_the_frames_name_the_type():
    judge = FixedJudge([
        {"divergence": 0.8, "agreement": 0.1, "types": {"quantity": 0.1, "scope": 0.9}},  # frames: quantity
        {"divergence": 0.7, "agreement": 0.2, "types": {"contradiction": 0.6, "scope": 0.4}},  # no frame difference
        {"divergence": 0.1, "agreement": 0.9, "types": {"contradiction": 0.5, "scope": 0.5}},
        {"divergence": 0.3, "agreement": 0.5, "types": {"contradiction": 0.5, "scope": 0.5}},  # below both bars
    ])
    agree_a = claim("us-4", "US", "Both sides met in Hanoi.", predicates=("meet",))
    agree_b = claim("d-4", "DPRK", "The two leaders met in Hanoi.", predicates=("meet",))
    quiet_a = claim("us-5", "US", "The weather was fine.", predicates=())
    quiet_b = claim("d-5", "DPRK", "The hall was large.", predicates=())
    pairs = alignment((ENTIRETY, FIVE, 0.8), (WALKED, LEFT, 0.6), (agree_a, agree_b, 0.9), (quiet_a, quiet_b, 0.5))
    claims = by_id(ENTIRETY, FIVE, WALKED, LEFT, agree_a, agree_b, quiet_a, quiet_b)
    flags = {tuple(f.claims): f for f in type_pairs(claims, pairs, scorer=None, judge=judge)}
    assert [c.a.id for c in judge.seen] == ["us-1", "us-2", "us-4", "us-5"]  # every aligned pair is judged

    assert set(flags) == {("us-1", "d-1"), ("us-2", "d-2"), ("us-4", "d-4")}
    quantity = flags[("us-1", "d-1")]
    assert quantity.type == "quantity"  # the frames' type, though the type model prefers scope
    assert quantity.score == pytest.approx(above_bar(0.8, 0.5))
    assert quantity.explanation == ("quantity: 'in their entirety' vs 'five of the eleven'; the judge gives 80% "
                                    "that both speak of one matter and part (its type model: scope 90%)")
    assert quantity.evidence["highlights"] == {"us-1": [[33, 50]], "d-1": [[13, 31]]}
    assert quantity.evidence["judge"] == "judge-fake" and "probs" not in quantity.evidence
    assert quantity.evidence["judge_probs"] == {"divergence": 0.8, "agreement": 0.1,
                                                "types": {"quantity": 0.1, "scope": 0.9}}

    typed = flags[("us-2", "d-2")]
    assert typed.type == "contradiction"  # no frame difference: the judge's type model decides
    assert typed.explanation.startswith("contradiction: the judge gives 70%")
    assert set(typed.evidence["highlights"]) == {"us-2", "d-2"}

    agreement = flags[("us-4", "d-4")]
    assert agreement.type == "agreement" and agreement.score == pytest.approx(above_bar(0.9, 0.6))
    assert agreement.explanation == ("agreement: the judge gives 90% that both give compatible accounts "
                                     "of one matter")


def test_the_judge_path_records_the_classifier_that_informed_it():
    judge = FixedJudge([{"divergence": 0.8, "agreement": 0.1, "types": {"contradiction": 1.0}}])
    flags = type_pairs(by_id(WALKED, LEFT), alignment((WALKED, LEFT, 0.6)),
                       scorer=FixedScorer([0.1, 0.2, 0.7], backward=[0.1, 0.4, 0.5]), judge=judge)
    assert [f.type for f in flags] == ["contradiction"]
    assert flags[0].evidence["model"] == "fake-nli"
    assert flags[0].evidence["probs"] == {"entailment": 0.1, "neutral": 0.3, "contradiction": 0.6}
    assert flags[0].explanation.endswith("; the pair classifier gives 70% that both cannot be true")
    assert judge.seen[0].probs_ab == (0.1, 0.2, 0.7) and judge.seen[0].probs_ba == (0.1, 0.4, 0.5)


# --- finalise -------------------------------------------------------------------------------------


def flag(claims: list[str], type_: str, score: float) -> Divergence:
    return Divergence(id="", type=type_, topic="t", claims=claims, sides=["US", "DPRK"], score=score, explanation="")


def sha_id(key: str) -> str:
    return "d-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def test_finalise_ranks_most_confident_first_with_stable_ties():
    flags = [flag(["a", "b"], "scope", 0.5), flag(["c"], "omission", 0.9), flag(["a", "c"], "quantity", 0.5),
             flag(["b", "d"], "quantity", 0.5), flag(["x", "y"], "agreement", 0.7)]
    ranked = finalise(list(flags))
    # by score, then type, then claims: the same order whatever order the flags came in
    assert [(f.type, f.claims) for f in ranked] == [
        ("omission", ["c"]), ("agreement", ["x", "y"]),
        ("quantity", ["a", "c"]), ("quantity", ["b", "d"]), ("scope", ["a", "b"])]
    assert [f.id for f in finalise(list(reversed(flags)))] == [f.id for f in ranked]


def test_finalise_ids_follow_the_claims_not_the_rank_or_type():
    first = finalise([flag(["a", "b"], "scope", 0.9), flag(["c"], "omission", 0.4)])
    # a rerun with a retrained model: other scores, another type, another order
    rerun = finalise([flag(["c"], "omission", 0.95), flag(["a", "b"], "contradiction", 0.2)])
    assert {tuple(f.claims): f.id for f in first} == {tuple(f.claims): f.id for f in rerun} == {
        ("a", "b"): sha_id("a|b"), ("c",): sha_id("c|omission")}
    assert len({f.id for f in finalise([flag(["a", "b"], "scope", 0.5), flag(["b", "a"], "scope", 0.5)])}) == 2
