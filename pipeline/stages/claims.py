"""Stage 2: sentences -> attributed, structured claims.

For each ingested sentence this stage decides whether it asserts something (the
``divergence_claims`` component, ``claim_detector.py``); finds who makes the claim (the
turn's speaker, or the source of reported speech in a document that speaks for no
party); gives the claimer a side from the case's ``[sides]`` aliases; and fills its frame.

One parse: each paragraph of a party's turns becomes a Doc whose sentence starts are
ingest's (``sentences.sentence_doc``), and the whole pipeline (gazetteer, NER,
canonicaliser, attribution, claims) runs over those Docs with ``nlp.pipe``. The parser
keeps the preset boundaries, so a claim is exactly an ingested sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..errors import Errors, ModelError
from ..schema import NON_PARTY_SIDES, PARTY_LABELS, CaseSpec, Claim, Document, Entity
from .claim_detector import scored_claims
from .entities import canonicalise_case
from .frames import extract_frame
from .sentences import ParseView, paragraphs, sentence_doc, sentence_tokens

# --- sides ---------------------------------------------------------------------------


@dataclass
class SideResolver:
    """Gives a mention (a speaker label, a source span) the side whose alias it contains."""

    aliases: list[tuple[re.Pattern[str], str]]
    entity_sides: dict[str, str]  # canonical entity id -> side
    parties: list[str]

    @classmethod
    def for_case(cls, case: CaseSpec, *, nlp: Language) -> "SideResolver":
        pairs: list[tuple[str, str]] = []
        for side in case.sides.values():
            pairs.extend((alias, side.name) for alias in (*side.aliases, side.name))
        for doc in case.documents:
            if doc.speaker and doc.side.lower() not in NON_PARTY_SIDES:
                pairs.append((doc.speaker, doc.side))
        pairs.sort(key=lambda p: -len(p[0]))
        compiled = [(re.compile(rf"(?<![\w]){re.escape(a)}(?![\w])", re.I), s) for a, s in pairs if a.strip()]
        entity_sides: dict[str, str] = {}
        texts = [a for a, _ in pairs]
        with nlp.select_pipes(enable=[p for p in nlp.pipe_names if p in {"divergence_gazetteer",
                                                                         "divergence_canonicalizer"}]):
            for (alias, side), doc in zip(pairs, nlp.pipe(texts)):
                for ent in doc.ents:
                    entity_sides.setdefault(ent._.canonical or ent.text, side)
        return cls(aliases=compiled, entity_sides=entity_sides, parties=case.parties)

    def side_of(self, mention: str | None, *, entities: Iterable[str] = ()) -> str | None:
        for canonical in entities:
            if canonical in self.entity_sides:
                return self.entity_sides[canonical]
        if not mention:
            return None
        for pattern, side in self.aliases:
            if pattern.search(mention):
                return side
        return None

    def other_party(self, side: str) -> str | None:
        others = [p for p in self.parties if p != side]
        return others[0] if len(others) == 1 else None


def side_token(side: str | None) -> str | None:
    return f"SIDE:{side}" if side else None


# --- the stage -------------------------------------------------------------------------


def extract_claims(case: CaseSpec, documents: list[Document], *, nlp: Language,
                   threshold: float = 0.3, batch_size: int = 64) -> list[Claim]:
    """Parse every claim paragraph once (``nlp.pipe``) and return the claims, in document order."""
    if "divergence_claims" not in nlp.pipe_names:
        raise ModelError(Errors.E083)
    resolver = SideResolver.for_case(case, nlp=nlp)
    blocks = claim_blocks(documents)
    docs = (sentence_doc(nlp.make_doc, b.view.text, b.starts) for b in blocks)
    parsed = nlp.pipe(docs, batch_size=batch_size, component_cfg={"divergence_claims": {"threshold": threshold}})
    claims: list[Claim] = []
    for block, doc in zip(blocks, parsed):
        index_of = dict(zip(sentence_tokens(doc, block.starts), block.indices))
        speaker = block.document.turns[block.turn].speaker
        for span, score in scored_claims(doc):
            if span.start in index_of:
                claims.append(_make_claim(case, block.document, index_of[span.start], span, block.start, block.view,
                                          speaker, score, resolver))
    _link_entities(claims)
    return claims


# Reporters' questions, moderators and headings are nobody's claims, whatever the
# threshold: their paragraphs are not even parsed.
_NOT_CLAIMS = frozenset({"question", "stage", "header"})


@dataclass(frozen=True)
class ClaimBlock:
    """A paragraph of a party's turn: what the parser reads (``view``) and the ingested
    sentences in it (their index in ``document.sentences``, their start in the view)."""

    document: Document
    start: int
    end: int
    turn: int
    view: ParseView
    indices: tuple[int, ...]
    starts: tuple[int, ...]


def claim_blocks(documents: Iterable[Document]) -> list[ClaimBlock]:
    return [block for document in documents for block in _document_blocks(document)]


def _document_blocks(document: Document) -> Iterator[ClaimBlock]:
    sentences = document.sentences
    next_sentence = 0
    for start, end, turn in paragraphs(document.text, document.turns):
        # both lists are in text order; sentences of paragraphs left out are passed over
        first = next_sentence
        while next_sentence < len(sentences) and sentences[next_sentence].start < end:
            next_sentence += 1
        if document.turns[turn].role in _NOT_CLAIMS:
            continue
        view = ParseView(document.text[start:end])
        inside = [i for i in range(first, next_sentence) if sentences[i].start >= start]
        yield ClaimBlock(document, start, end, turn, view, tuple(inside),
                         tuple(view.to_view(sentences[i].start - start) for i in inside))


def _make_claim(case: CaseSpec, document: Document, index: int, span: Span, block_start: int, view: ParseView,
                speaker: str | None, score: float, resolver: SideResolver) -> Claim:
    doc_side = document.spec.side
    party_document = doc_side.lower() not in NON_PARTY_SIDES

    def at(start: int, end: int) -> tuple[int, int]:  # view offsets -> document offsets
        return block_start + view.start(start), block_start + view.end(end)

    entities = []
    for e in span.ents:
        e_start, e_end = at(e.start_char, e.end_char)
        entities.append(Entity(text=document.text[e_start:e_end], label=e.label_, canonical=e._.canonical or e.text,
                               start=e_start, end=e_end))
    claimer = speaker or document.spec.speaker or doc_side
    side = resolver.side_of(claimer) if not party_document else doc_side
    reported, cue = False, None
    source_text = None
    attribution = _speaker_attribution(span, resolver)
    if attribution is not None:
        source_text = re.sub(r"[’']s$", "", attribution.source.text.strip())
        cue = attribution.cue.text if attribution.cue is not None else None
        if not party_document:
            # An analyst's "According to Ri, ..." is Ri's claim, on Ri's side (CONTRACTS §1).
            source_entities = [e._.canonical for e in attribution.source.ents if e._.canonical]
            source_side = resolver.side_of(source_text, entities=source_entities)
            claimer, reported = source_text, True
            side = source_side or side
    side = side or doc_side
    self_id = side_token(side)
    other = resolver.other_party(side) if side in resolver.parties else None
    frame = extract_frame(span, self_id=self_id, other_id=side_token(other))
    # cues are relative to the block doc; move them to document offsets
    for item in (*frame.cues, *frame.quantities):
        item["start"], item["end"] = at(item["start"], item["end"])
    frame.agent = _side_of_entity(frame.agent, resolver) or frame.agent
    frame.blame = _side_of_entity(frame.blame, resolver) or frame.blame
    start, end = at(span.start_char, span.end_char)
    claim = Claim(id=f"{document.id}:s{index}", doc_id=document.id, side=side, claimer=claimer,
                  text=document.text[start:end], start=start, end=end, score=score, entities=entities,
                  frame=frame, speaker=speaker, reported=reported, cue=cue)
    if source_text and party_document:
        claim.cue = cue
        src_start, src_end = at(attribution.source.start_char, attribution.source.end_char)
        claim.frame.cues.append({"kind": "reported", "text": source_text, "start": src_start, "end": src_end})
    return claim


_HUMAN_NOUNS = re.compile(r"\b(officials?|spokes(?:man|woman|person)|ministers?|ministry|president|secretary|"
                          r"chairman|leader|government|administration|reporters?|diplomats?|envoy|agency|"
                          r"media|negotiators?|aides?|analysts?|experts?|watchers|sources?|side)\b", re.I)


def _speaker_attribution(span: Span, resolver: SideResolver):
    """The reported-speech attribution covering ``span`` whose source can speak.

    The extractor also fires on verbs like "signaled" or "appears" with sources such
    as "that" or "It"; a claimer must be a named party, an entity, or a human noun.
    """
    if not Doc.has_extension("attributions") or not span.doc._.attributions:
        return None
    best, best_overlap = None, 0
    for attribution in span.doc._.attributions:
        source = attribution.source
        if source is None:
            continue
        named = any(e.label_ in PARTY_LABELS for e in source.ents) or resolver.side_of(source.text) is not None
        if not (named or _HUMAN_NOUNS.search(source.text)):
            continue
        content = attribution.content
        overlap = min(content.end_char, span.end_char) - max(content.start_char, span.start_char)
        if overlap > best_overlap:
            best, best_overlap = attribution, overlap
    return best


def _side_of_entity(value: str | None, resolver: SideResolver) -> str | None:
    """Agents and blamed actors are compared by side: "Trump", "Washington" and "we" (US) alike."""
    if value is None:
        return None
    if value.startswith("SIDE:"):
        return value
    side = resolver.side_of(value, entities=[value])
    return side_token(side)


def _link_entities(claims: list[Claim]) -> None:
    mentions = [(e.text, e.label, e.canonical) for c in claims for e in c.entities]
    remap = canonicalise_case(mentions)
    if not remap:
        return
    for claim in claims:
        claim.entities = [Entity(text=e.text, label=e.label, canonical=remap.get(e.canonical, e.canonical),
                                 start=e.start, end=e.end) for e in claim.entities]
