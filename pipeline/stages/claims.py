"""Stage 2: sentences -> attributed, structured claims.

For each ingested sentence this stage decides whether it asserts something (an
offer, demand, refusal, promise, position, number or event) rather than asking,
greeting, thanking or filling time; finds who makes the claim (the turn's speaker,
or the source of reported speech in a document that speaks for no party); gives
the claimer a side from the case's ``[sides]`` aliases; and fills its frame.

The detector is a transparent weighted score over parse and lexicon features, so a
user can see why a sentence was kept and move ``claim_threshold``; it is measured
against hand labels in ``evaluation/labels/hanoi-claims.jsonl``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from spacy.language import Language
from spacy.tokens import Doc, Span

from .entities import canonicalise_case
from .frames import PREDICATES, extract_frame
from .ingest import ParseView, paragraphs
from ..schema import NON_PARTY_SIDES, CaseSpec, Claim, Document, Entity

_LEMMA_PREDICATE = {lemma for lemmas in PREDICATES.values() for lemma in lemmas}
_FILLER = re.compile(
    r"^\s*(?:thank(?:s| you)|good (?:morning|afternoon|evening|night)|please|go ahead|okay|ok|yes|no|"
    r"yeah|well|all right|alright|hello|hi|welcome|sure|right|great|wow|so|and|anyway|next question|"
    r"excuse me|sorry)\b[\s,.!]*(?:(?:very|so) much|everybody|everyone|all|sir|ma'am|please|"
    r"mr\.? president|again)?[\s,.!]*$", re.I)
_COURTESY = re.compile(r"\b(thank(?:s| you)|(?:I|we) (?:also |really |just )?thank|honou?r(?:ed)?|congratulat\w*|welcome|wonderful host|"
                       r"beautiful|incredible|fantastic|amazing|appreciate|pleasure|great job|"
                       r"good morning|good afternoon|good evening|ladies and gentlemen)\b", re.I)
_META = re.compile(r"\b(?:(?:want|like|wanted|going) to (?:say|start|begin|thank|mention|add|talk about)|"
                   r"let me (?:say|start|begin|just)|before I (?:get|start|begin|go)|"
                   r"I(?:'d| would) like to)\b", re.I)
_DOMAIN_LABELS = {"FACILITY", "FAC", "RESOLUTION", "SANCTIONS", "WEAPON", "EVENT", "LAW"}
_PARTY_LABELS = {"PERSON", "GPE", "ORG", "NORP"}

if not Span.has_extension("claim_score"):
    Span.set_extension("claim_score", getter=lambda span: claim_score(span))
if not Doc.has_extension("claims"):
    Doc.set_extension("claims", default=None)


def claim_score(span: Span, *, role: str = "statement", reading: Span | None = None) -> float:
    """Probability-like score that the span asserts a claim (see module docstring).

    ``reading`` is the same words parsed in sentence case, for a headline written in
    title case ("Seth Rogen To Play Steve Wozniak"), whose capitals mislead the tagger:
    verbs and subjects are read from it, entities from ``span``.
    """
    if role in {"question", "stage", "header"}:
        return 0.02 if role != "question" else 0.05
    text = span.text.strip()
    if not text or text.endswith("?"):
        return 0.05
    words = [t for t in span if not (t.is_punct or t.is_space)]
    if len(words) < 3 or _FILLER.match(text):
        return 0.05
    syntax = reading if reading is not None and len(reading) == len(span) else span
    ents = list(span.ents)
    has_subject = any(t.dep_ in {"nsubj", "nsubjpass", "expl"} for t in syntax)
    has_verb = any(t.pos_ in {"VERB", "AUX"} for t in syntax)
    predicates = sum(1 for t in syntax if t.lemma_.lower() in _LEMMA_PREDICATE)
    domain = sum(1 for e in ents if e.label_ in _DOMAIN_LABELS)
    parties = sum(1 for e in ents if e.label_ in _PARTY_LABELS)
    numbers = sum(1 for e in ents if e.label_ in {"CARDINAL", "QUANTITY", "MONEY", "PERCENT", "DATE"})
    negated = any(t.dep_ == "neg" for t in syntax) or any(t.lower_ in _NEGATORS for t in syntax)
    courtesy = len(_COURTESY.findall(text))
    imperative = syntax[0].tag_ == "VB" and not has_subject
    meta = bool(_META.search(text))
    # a commitment or an obligation states a position ("they must act", "we will respond")
    binding = any(t.tag_ == "MD" and t.lower_ in _BINDING_MODALS for t in syntax) or bool(_OBLIGATION.search(text))
    headline = is_headline(span)
    # A headline states its story's main claim in telegraphic grammar (no article, no
    # subject, "X to do Y", "Y killed in Z"); any verb or named party will do for it. A
    # short verbless sentence asserts when it carries a number, a named thing or a
    # negation ("Five of the eleven, not all of them.").
    dateline = not has_verb and _dateline(span)
    asserted = (has_subject and has_verb) or (headline and not dateline and (has_verb or parties or domain or numbers))
    elliptical = (not has_verb and not headline and not dateline and len(words) <= 15
                  and bool(numbers or domain or negated) and any(t.pos_ in {"NOUN", "PROPN", "NUM"} for t in span))
    logit = (-2.2 + 1.1 * asserted + 1.0 * (headline and asserted) + 0.9 * elliptical + 0.8 * min(predicates, 2)
             + 0.9 * min(domain, 2) + 0.35 * min(parties, 2) + 0.4 * min(numbers, 2) + 0.3 * negated + 0.5 * binding
             + 0.25 * min(len(words) / 12, 2) - 1.3 * min(courtesy, 2) - 1.0 * imperative - 1.5 * meta)
    return 1.0 / (1.0 + math.exp(-logit))


_BINDING_MODALS = frozenset({"must", "will", "shall", "wo", "'ll", "ll", "wo"})
_OBLIGATION = re.compile(r"\b(?:(?:has|have|had) (?:a |the )?(?:responsibility|obligation|duty) to|(?:need|needs|has|have) to)\b",
                         re.I)
_NEGATORS = frozenset({"not", "no", "never", "none", "neither", "nor", "n't"})
_TERMINAL = (".", "!", "?", "…", ";", ",", ":")
_CLOSERS = "\"'”’)]» \t\u00a0"


def _dateline(span: Span) -> bool:
    """"Pyongyang, March 1 (KCNA)", "Editorial analysis, March 1, 2019": a place or kind and a date."""
    in_entity = {t.i for e in span.ents for t in e}
    content = [t for t in span if t.i not in in_entity and t.pos_ in {"NOUN", "ADJ", "VERB", "ADV"}]
    return any(e.label_ == "DATE" for e in span.ents) and len(content) <= 2


def is_headline(span: Span) -> bool:
    """Whether the span is (in) a line of its own, 3-30 words, that does not end like a
    sentence: a headline or title ("Macaulay Culkin Dead? Hoax Goes Viral")."""
    doc = span.doc
    if len(doc) > 45:
        return False
    text = doc.text.rstrip(_CLOSERS)
    words = [t for t in doc if t.is_alpha]
    return (bool(text) and "\n" not in text and 3 <= len(words) <= 30
            and (not text.endswith(_TERMINAL) or title_cased(text)))


def title_cased(text: str) -> bool:
    """Most words capitalised, as in "Obama Denounces Execution": the tagger needs a sentence-case reading."""
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'’\-]*", text) if len(w) > 3]
    return len(words) >= 2 and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def sentence_case(text: str) -> str:
    """Lower-case every Capitalised word but the first (acronyms stay); same length as ``text``."""
    return re.sub(r"(?<=\W)([A-Z])(?=[a-z'’])", lambda m: m.group(1).lower(), text)


@Language.factory("divergence_claims", default_config={"threshold": 0.3})
def make_claim_detector(nlp: Language, name: str, threshold: float) -> "ClaimDetector":
    """Sets ``doc._.claims``: the sentences scoring at least ``threshold`` (version 1)."""
    return ClaimDetector(threshold=threshold)


class ClaimDetector:
    version = 1

    def __init__(self, *, threshold: float) -> None:
        self.threshold = threshold

    def __call__(self, doc: Doc) -> Doc:
        doc._.claims = [s for s in doc.sents if claim_score(s) >= self.threshold]
        return doc


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
    """Parse every document once (``nlp.pipe``) and return the claims, in document order."""
    resolver = SideResolver.for_case(case, nlp=nlp)
    # Reporters' questions, moderators and headings are nobody's claims, whatever the
    # threshold: their blocks are not even parsed.
    jobs: list[tuple[Document, int, int, int]] = [
        (d, s, e, t) for d in documents for s, e, t in paragraphs(d.text, d.turns)
        if d.turns[t].role not in _NOT_CLAIMS]
    # the parser reads each block's view (Unicode spaces, quotes, invisible characters
    # made plain); offsets are mapped back to the document's text
    views = [ParseView(d.text[s:e]) for d, s, e, _ in jobs]
    parsed = nlp.pipe((v.text for v in views), batch_size=batch_size)
    readings = _sentence_case_readings(nlp, [v.text for v in views], batch_size=batch_size)
    claims: list[Claim] = []
    sent_iter = {d.id: iter(enumerate(d.sentences)) for d in documents}
    pending = {d.id: next(sent_iter[d.id], None) for d in documents}
    for j, ((document, start, end, ti), view, doc) in enumerate(zip(jobs, views, parsed)):
        turn = document.turns[ti]
        # ingested sentences inside this block (both lists are in text order)
        while pending[document.id] is not None and pending[document.id][1].start < end:
            index, sentence = pending[document.id]
            pending[document.id] = next(sent_iter[document.id], None)
            if sentence.start < start:
                continue
            span = doc.char_span(view.to_view(sentence.start - start), view.to_view(sentence.end - start),
                                 alignment_mode="expand")
            if span is None or len(span) == 0:
                continue
            reading = readings.get(j)
            score = claim_score(span, role=turn.role,
                                reading=reading[span.start:span.end] if reading is not None else None)
            if score < threshold:
                continue
            claims.append(_make_claim(case, document, index, span, start, view, turn.speaker, score, resolver))
    _link_entities(claims)
    return claims


_NOT_CLAIMS = frozenset({"question", "stage", "header"})


def _sentence_case_readings(nlp: Language, texts: list[str], *, batch_size: int) -> dict[int, Doc]:
    """Tagger and parser over title-cased one-line blocks, in sentence case (index -> Doc).

    Only short blocks that could be headlines; the tokens match the original parse
    because the casing is all that changes.
    """
    wanted = [(i, t) for i, t in enumerate(texts) if "\n" not in t and len(t) < 300 and title_cased(t)]
    if not wanted:
        return {}
    keep = [p for p in nlp.pipe_names if p in {"tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"}]
    with nlp.select_pipes(enable=keep):
        docs = nlp.pipe((sentence_case(t) for _, t in wanted), batch_size=batch_size)
        return {i: d for (i, _), d in zip(wanted, docs)}


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
        named = any(e.label_ in _PARTY_LABELS for e in source.ents) or resolver.side_of(source.text) is not None
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
