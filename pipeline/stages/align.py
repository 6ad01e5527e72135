"""Stage 3: find the claims that speak about the same thing, across sides.

Candidates come from a vector index (hnswlib, inner product over L2-normalised
MiniLM embeddings): top-k neighbours per claim, so cost grows near-linearly with
the number of claims instead of comparing all pairs. Each candidate is rescored
with what embeddings miss: shared canonical entities (weighted by rarity in the
case, so "North Korea" counts less than "Yongbyon"), shared predicate classes, and
a quotation of the other claim's words ("'complete'" against "complete denuclearization").
Topics are the connected groups of strongly aligned claims, capped in size so one
busy subject cannot swallow the case.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..schema import AlignedPair, Claim

_GENERIC = re.compile(r"^(NUM:|SIDE:)")
# a quoted word or short phrase ('complete', "in their entirety"); the look-arounds keep
# contractions (weren't, that's) from opening or closing a quote
_QUOTED = re.compile(r"(?<!\w)['\"\u2018\u201c]([A-Za-z][\w -]{1,40}?)['\"\u2019\u201d](?!\w)")
_THING_LABELS = {"SANCTIONS", "FACILITY", "FAC", "WEAPON", "RESOLUTION", "EVENT", "LAW", "PRODUCT"}


@dataclass(frozen=True)
class AlignConfig:
    top_k: int = 8
    min_similarity: float = 0.35  # combined score to keep a pair
    # ... or either claim is among the other's ``keep_rank`` nearest claims of its side and the
    # pair scores at least ``rank_floor``: counterparts that word things differently
    keep_rank: int = 2
    rank_floor: float = 0.2
    topic_similarity: float = 0.6  # combined score to join two claims' topics
    entity_weight: float = 0.2
    predicate_bonus: float = 0.05
    quote_bonus: float = 0.1  # one claim quotes a word or phrase the other one uses


@dataclass
class Alignment:
    pairs: list[AlignedPair]  # cross-side pairs, best first
    topic_of: dict[str, str]  # claim id -> topic id
    topic_names: dict[str, str]
    best_other: dict[str, dict[str, float]] = field(default_factory=dict)  # claim -> side -> best combined score
    best_cosine: dict[str, dict[str, float]] = field(default_factory=dict)  # claim -> side -> best plain cosine


def nearest_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine similarities) of each vector's k nearest others, via hnswlib."""
    import hnswlib

    n, dim = vectors.shape
    k = min(k + 1, n)
    index = hnswlib.Index(space="ip", dim=dim)
    # M/ef as hnswlib recommends for high recall; one thread keeps the graph deterministic
    index.init_index(max_elements=max(n, 1), ef_construction=200, M=16, random_seed=13)
    index.set_num_threads(1)
    index.add_items(vectors, np.arange(n))
    index.set_ef(max(64, 2 * k))
    labels, distances = index.knn_query(vectors, k=k)
    return labels, 1.0 - distances


def _entity_sets(claims: list[Claim]) -> tuple[list[set[str]], dict[str, float]]:
    sets = [{e.canonical for e in c.entities if not _GENERIC.match(e.canonical)} for c in claims]
    df = Counter(x for s in sets for x in s)
    n = max(len(claims), 1)
    idf = {x: math.log(1 + n / d) for x, d in df.items()}
    return sets, idf


def _entity_overlap(a: set[str], b: set[str], idf: dict[str, float]) -> tuple[float, tuple[str, ...]]:
    shared = a & b
    if not shared:
        return 0.0, ()
    union = a | b
    score = sum(idf[x] for x in shared) / max(sum(idf[x] for x in union), 1e-9)
    return score, tuple(sorted(shared))


def quotes_other(a: str, b: str, *, terms_a: list[str] | None = None, terms_b: list[str] | None = None) -> bool:
    """Whether either text quotes a word or phrase the other one uses: a speaker who
    quotes "'complete'" is talking about the text that says "complete".
    ``terms_a``/``terms_b``: the texts' quoted terms, when already extracted."""
    terms_a = _QUOTED.findall(a) if terms_a is None else terms_a
    terms_b = _QUOTED.findall(b) if terms_b is None else terms_b
    for terms, other in ((terms_a, b), (terms_b, a)):
        for term in terms:
            if re.search(rf"(?<!\w){re.escape(term.strip())}(?!\w)", other, re.I):
                return True
    return False


def _rescore(claims: list[Claim], i: int, j: int, cos: float, ent_sets: list[set[str]],
             idf: dict[str, float], config: AlignConfig,
             quoted: list[list[str]]) -> tuple[float, float, tuple[str, ...]]:
    overlap, shared = _entity_overlap(ent_sets[i], ent_sets[j], idf)
    same_pred = bool(set(claims[i].frame.predicates) & set(claims[j].frame.predicates))
    quotes = bool(quoted[i] or quoted[j]) and quotes_other(claims[i].text, claims[j].text,
                                                           terms_a=quoted[i], terms_b=quoted[j])
    # entities, predicates and quotations add to the cosine, never dilute it: paraphrases
    # that name nothing in common still align
    combined = (cos + config.entity_weight * overlap + config.predicate_bonus * same_pred
                + config.quote_bonus * quotes)
    return combined, cos, shared


def align_claims(claims: list[Claim], vectors: np.ndarray, *, parties: list[str],
                 config: AlignConfig = AlignConfig()) -> Alignment:
    """Cross-side pairs from one index per side (each claim's k nearest claims of every
    other party), topics from one index over all claims."""
    n = len(claims)
    if n < 2:
        return Alignment(pairs=[], topic_of={c.id: f"t{i}" for i, c in enumerate(claims)},
                         topic_names={f"t{i}": _name_topic([c]) for i, c in enumerate(claims)})
    ent_sets, idf = _entity_sets(claims)
    quoted = [_QUOTED.findall(c.text) for c in claims]
    candidates: dict[tuple[int, int], tuple[float, float, tuple[str, ...]]] = {}

    def consider(i: int, j: int, cos: float) -> None:
        key = (min(i, j), max(i, j))
        if i != j and j >= 0 and key not in candidates:
            candidates[key] = _rescore(claims, key[0], key[1], float(cos), ent_sets, idf, config, quoted)

    labels, sims = nearest_neighbours(vectors, config.top_k)
    for i in range(n):
        for j, cos in zip(labels[i], sims[i]):
            consider(i, int(j), cos)

    # per-side indexes: every claim's nearest claims on each other side, and how close
    # the other side ever comes to it (for omissions)
    party_set = set(parties)
    members = {side: [i for i, c in enumerate(claims) if c.side == side] for side in parties}
    best_other: dict[str, dict[str, float]] = defaultdict(dict)
    best_cosine: dict[str, dict[str, float]] = defaultdict(dict)
    rank: dict[tuple[int, int], int] = {}  # (query, neighbour) -> 1-based rank among the query's neighbours of that side
    for side, idx in members.items():
        if not idx:
            continue
        queries = [i for i, c in enumerate(claims) if c.side in party_set and c.side != side]
        if not queries:
            continue
        nn, nn_sims = _query_side(vectors, idx, queries, config.top_k)
        for qi, row, row_sims in zip(queries, nn, nn_sims):
            for r, (j, cos) in enumerate(sorted(zip(row, row_sims), key=lambda x: -x[1]), start=1):
                rank[(qi, int(j))] = r
                consider(qi, int(j), cos)
                combined = candidates[(min(qi, int(j)), max(qi, int(j)))][0]
                best_other[claims[qi].id][side] = max(best_other[claims[qi].id].get(side, 0.0), combined)
                best_cosine[claims[qi].id][side] = max(best_cosine[claims[qi].id].get(side, 0.0), float(cos))

    topic_of, topic_names = _topics(claims, candidates, idf, config)
    pairs: list[AlignedPair] = []
    for (i, j), (combined, cos, shared) in sorted(candidates.items(), key=lambda kv: -kv[1][0]):
        a, b = claims[i], claims[j]
        if a.side == b.side or a.side not in party_set or b.side not in party_set:
            continue
        near = min(rank.get((i, j)) or 99, rank.get((j, i)) or 99) <= config.keep_rank
        if combined < config.min_similarity and not (near and combined >= config.rank_floor):
            continue
        pairs.append(AlignedPair(a=a.id, b=b.id, similarity=round(combined, 4), shared_entities=shared,
                                 topic=topic_of[a.id], cosine=round(cos, 4), rank_ab=rank.get((i, j)),
                                 rank_ba=rank.get((j, i))))
    return Alignment(pairs=pairs, topic_of=topic_of, topic_names=topic_names, best_other=dict(best_other),
                     best_cosine=dict(best_cosine))


def _query_side(vectors: np.ndarray, idx: list[int], queries: list[int], k: int) -> tuple[list[list[int]], list[list[float]]]:
    import hnswlib

    k = min(k, len(idx))
    index = hnswlib.Index(space="ip", dim=vectors.shape[1])
    index.init_index(max_elements=len(idx), ef_construction=200, M=16, random_seed=13)
    index.set_num_threads(1)
    index.add_items(vectors[idx], np.asarray(idx))
    index.set_ef(max(64, 2 * k))
    labels, distances = index.knn_query(vectors[queries], k=k)
    return labels.tolist(), (1.0 - distances).tolist()


def _topics(claims: list[Claim], candidates, idf: dict[str, float], config: AlignConfig):
    """Union-find over strong pairs of any sides, capped so one subject cannot swallow the case."""
    n = len(claims)
    parent = list(range(n))
    size = [1] * n
    cap = max(8, n // 6)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (i, j), (combined, _, _) in sorted(candidates.items(), key=lambda kv: -kv[1][0]):
        if combined < config.topic_similarity:
            break
        ri, rj = find(i), find(j)
        if ri != rj and size[ri] + size[rj] <= cap:
            parent[rj] = ri
            size[ri] += size[rj]
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(i)
    topic_of: dict[str, str] = {}
    topic_names: dict[str, str] = {}
    for t, (_, group) in enumerate(sorted(groups.items(), key=lambda g: min(g[1]))):
        tid = f"t{t}"
        for i in group:
            topic_of[claims[i].id] = tid
        topic_names[tid] = _name_topic([claims[i] for i in group], idf)
    return topic_of, topic_names


_STOP = set("""a an the this that these those it its they them their we our us i me my you your he him his she her
be is are was were been being have has had do does did will would shall should can could may might must not no
and or but if then so than as of in on at to for from by with about into over after before very really just
also there here what which who whom whose when where why how all any some more most much many such only own
same other one thing things lot lots going get got go said say says think know want wanted""".split())


def _name_topic(members: list[Claim], idf: dict[str, float] | None = None) -> str:
    """A topic's name: its most shared specific entities, then its most frequent content words.

    Entities are weighted by rarity in the case so "Yongbyon" names a topic before
    "the United States", which every claim mentions.
    """
    idf = idf or {}
    ents: Counter[str] = Counter()
    surface: dict[str, Counter[str]] = defaultdict(Counter)
    for c in members:
        for e in {e.canonical: e for e in c.entities}.values():
            if _GENERIC.match(e.canonical) or e.label in {"DATE", "TIME", "ORDINAL"}:
                continue
            # what is disputed (sanctions, a facility, a test) names a topic better than who
            weight = 2.0 if e.label in _THING_LABELS else 0.5 if e.label in {"PERSON", "GPE", "NORP"} else 1.0
            ents[e.canonical] += weight * idf.get(e.canonical, 1.0)
            surface[e.canonical][re.sub(r"^the\s+", "", e.text, flags=re.I)] += 1
    words: Counter[str] = Counter()
    for c in members:
        for w in dict.fromkeys(re.findall(r"[a-z][a-z\-'’]{3,}", c.text.lower())):  # stable order
            if w not in _STOP and "'" not in w and "’" not in w:
                words[w] += 1
    parts = [surface[cid].most_common(1)[0][0] for cid, _ in ents.most_common(2)]
    taken = " ".join(parts).lower()
    parts += [w for w, _ in words.most_common(4) if w not in taken][: max(1, 3 - len(parts))]
    return " · ".join(parts[:3]) if parts else "misc"
