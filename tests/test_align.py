"""Alignment: the vector index finds the true nearest neighbours; pairs stay cross-side."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.stages.align import AlignConfig, align_claims, nearest_neighbours
from pipeline.schema import Claim, Entity, Frame


def _unit(rng, n, dim=32):
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_index_neighbours_match_exact_search():
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 500)
    labels, sims = nearest_neighbours(vectors, k=5)
    exact = vectors @ vectors.T
    np.fill_diagonal(exact, -np.inf)
    truth = np.argsort(-exact, axis=1)[:, :5]
    found = labels[:, 1:]  # first hit is the vector itself
    recall = np.mean([len(set(found[i]) & set(truth[i])) / 5 for i in range(len(vectors))])
    assert recall > 0.98
    assert np.allclose(sims[:, 1], exact[np.arange(500), truth[:, 0]], atol=1e-4)


def _claim(i, side, text, entities=(), predicates=()):
    ents = [Entity(text=e, label="FACILITY", canonical=e.upper(), start=0, end=len(e)) for e in entities]
    return Claim(id=f"c{i}", doc_id=side.lower(), side=side, claimer=side, text=text, start=0, end=len(text),
                 score=0.9, entities=ents, frame=Frame(predicates=list(predicates)))


def test_pairs_are_cross_side_and_shared_entities_raise_the_score():
    rng = np.random.default_rng(1)
    base = _unit(rng, 1)[0]
    noise = _unit(rng, 4) * 0.35
    vectors = np.stack([base + noise[0], base + noise[1], base + noise[2], -base + noise[3]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    claims = [_claim(0, "US", "a", ["Yongbyon"], ["dismantle"]), _claim(1, "US", "b"),
              _claim(2, "DPRK", "c", ["Yongbyon"], ["dismantle"]), _claim(3, "DPRK", "d")]
    result = align_claims(claims, vectors, parties=["US", "DPRK"], config=AlignConfig(top_k=3, min_similarity=0.0))
    assert result.pairs and all({p.a, p.b} & {"c0", "c1"} and {p.a, p.b} & {"c2", "c3"} for p in result.pairs)
    best = result.pairs[0]
    assert {best.a, best.b} == {"c0", "c2"} and best.shared_entities == ("YONGBYON",)
    assert set(result.best_other["c0"]) == {"DPRK"}
    assert set(result.topic_of) == {"c0", "c1", "c2", "c3"}


def test_quoting_the_other_sides_word_counts_as_talking_about_it():
    from pipeline.stages.align import quotes_other

    pompeo = "Everyone involved understands 'complete' to include 'verifiable'."
    joint = "The DPRK undertakes to work toward the complete denuclearization of the peninsula."
    assert quotes_other(pompeo, joint) and quotes_other(joint, pompeo)
    # apostrophes of contractions open no quotation, and a quoted word must really occur
    assert not quotes_other("We weren't ready; that's all it was.", "It was all ready.")
    assert not quotes_other(pompeo, "Both will recover the remains of the fallen.")

    rng = np.random.default_rng(2)
    vectors = _unit(rng, 2)
    claims = [_claim(0, "US", pompeo), _claim(1, "Joint", joint)]
    plain = align_claims([_claim(0, "US", "x"), _claim(1, "Joint", "y")], vectors, parties=["US", "Joint"],
                         config=AlignConfig(min_similarity=-1.0))
    quoted = align_claims(claims, vectors, parties=["US", "Joint"], config=AlignConfig(min_similarity=-1.0))
    assert quoted.pairs[0].similarity == pytest.approx(plain.pairs[0].similarity + AlignConfig().quote_bonus, abs=1e-4)
