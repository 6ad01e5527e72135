"""Divergence typing from frames, and omissions: what a reviewer reads in the explanation."""

from __future__ import annotations

from pipeline.stages.align import Alignment
from pipeline.stages.divergence import compare_frames, find_omissions
from pipeline.schema import Claim, Entity, Frame


def _claim(cid, side, text, *, entities=(), predicates=(), cues=(), score=0.9):
    ents = [Entity(text=t, label=label, canonical=canon, start=0, end=len(t)) for t, label, canon in entities]
    frame = Frame(predicates=list(predicates), cues=[dict(c) for c in cues])
    return Claim(id=cid, doc_id=side.lower(), side=side, claimer=side, text=text, start=0, end=len(text),
                 score=score, entities=ents, frame=frame)


def test_verification_on_one_side_only_is_a_scope_difference():
    text = "Complete includes verifiable denuclearization."
    us = _claim("a", "US", text, predicates=["dismantle"],
                cues=[{"kind": "scope:verified", "text": "verifiable", "start": 18, "end": 28}])
    joint = _claim("b", "Joint", "The DPRK will work toward complete denuclearization.", predicates=["dismantle"])
    evidence = compare_frames(us, joint)
    assert evidence[0].type == "scope"
    assert "'verifiable'" in evidence[0].explanation and "Joint states no such qualifier" in evidence[0].explanation
    assert evidence[0].highlights == {"a": [[18, 28]]}
    # about different acts, a verification word on one side is not a difference
    other = _claim("c", "Joint", "Both will recover the remains.", predicates=["agree"])
    assert not any(e.type == "scope" for e in compare_frames(us, other))


def _alignment(best_other, best_cosine):
    # the Joint claim is close to the US side (the US names Kim too)
    best_other = {**best_other, "j": {"US": 0.61}}
    best_cosine = {**best_cosine, "j": {"US": 0.53}}
    return Alignment(pairs=[], topic_of={}, topic_names={}, best_other=best_other, best_cosine=best_cosine)


def test_a_facility_the_other_side_never_names_is_an_omission_despite_shared_names():
    site = ("missile engine testing site", "FACILITY", "ENGINE-TEST-SITE")
    kim = ("Kim", "PERSON", "KIM-JONG-UN")
    claims = [
        _claim("us", "US", "Kim told me they are destroying a missile engine testing site.", entities=[kim, site],
               predicates=["dismantle"]),
        _claim("j", "Joint", "Kim reaffirmed his commitment to complete denuclearization.", entities=[kim],
               predicates=["promise"]),
    ]
    # "Kim" and the predicate lift the combined score above the plain omission bar
    found = find_omissions(claims, _alignment({"us": {"Joint": 0.61}}, {"us": {"Joint": 0.53}}), parties=["US", "Joint"])
    assert [d.claims for d in found] == [["us"]]
    assert found[0].evidence["omitting_sides"] == ["Joint"]
    assert "never names" in found[0].explanation and "missile engine testing site" in found[0].explanation
    # a near-paraphrase on the other side addresses the claim even without the name
    assert find_omissions(claims, _alignment({"us": {"Joint": 0.8}}, {"us": {"Joint": 0.7}}), parties=["US", "Joint"]) == []
    # and so does naming the facility
    claims[1].entities.append(Entity(text="the engine test site", label="FACILITY", canonical="ENGINE-TEST-SITE",
                                     start=0, end=20))
    assert find_omissions(claims, _alignment({"us": {"Joint": 0.61}}, {"us": {"Joint": 0.53}}), parties=["US", "Joint"]) == []
