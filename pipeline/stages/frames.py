"""Claim frames: what a claim says, in slots the divergence stage can compare.

Lexicons, not a trained model: the slots that decide a divergence type (numbers,
"all" vs "part", "written" vs "verbal", an "if" clause, who is blamed) are small
closed classes in political speech, and a lexicon is inspectable and fixable by
the analyst who reads the explanation it produced.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from spacy.tokens import Span, Token

from ..schema import Frame
from .entities import NUMERIC_LABELS, number_value

# predicate class <- lemmas (verbs and their nominalisations)
PREDICATES: dict[str, set[str]] = {
    "offer": {"offer", "propose", "proposal", "give", "provide", "put"},
    "demand": {"want", "demand", "ask", "insist", "request", "require", "seek", "call", "need", "press"},
    "lift": {"lift", "ease", "remove", "relief", "relieve", "drop", "waive"},
    "dismantle": {"dismantle", "close", "destroy", "shut", "scrap", "dismantlement", "eliminate",
                  "denuclearize", "denuclearization", "decommission"},
    "promise": {"promise", "pledge", "commit", "commitment", "guarantee", "vow", "assure", "reaffirm"},
    "refuse": {"refuse", "reject", "decline", "rebuff", "dismiss"},
    "walk_away": {"walk", "leave", "abandon", "quit"},
    "sign": {"sign", "signature"},
    "test": {"test", "testing", "launch", "fire"},
    "agree": {"agree", "accept", "approve", "consent", "agreement"},
    "continue": {"continue", "keep", "maintain", "remain", "stay", "resume", "pursue"},
    "talk": {"meet", "talk", "negotiate", "negotiation", "discuss", "dialogue", "summit"},
    "halt": {"halt", "stop", "suspend", "freeze", "end", "cease", "moratorium", "suspension"},
    "change": {"change", "alter", "shift"},
    "lose": {"lose", "lost"},
    "raise": {"raise", "increase", "impose", "add", "tighten"},
}
_LEMMA_CLASS = {lemma: cls for cls, lemmas in PREDICATES.items() for lemma in lemmas}
# predicates that make their agent the one responsible for a failure
FAILURE_CLASSES = {"refuse", "walk_away", "demand", "lose"}
_FAILURE_WORDS = re.compile(r"\b(not ready|unwilling|not willing|couldn'?t|could not|can'?t give|unacceptable|"
                            r"walk(?:ed)? away|insist(?:ed)?|refus\w+|reject\w*|lost (?:his|the|its) will|"
                            r"not interested|no deal|collapse\w*)\b", re.I)

SCOPE_LEXICON: dict[str, tuple[str, ...]] = {
    "all": (r"in (?:their|its) entirety", r"\bentire(?:ly)?\b", r"\bentirety\b", r"\ball\b", r"\bfull(?:y)?\b",
            r"\bwhole\b", r"\btotal(?:ly)?\b", r"\bevery\b", r"\bcomplete\b", r"\bcompletely\b",
            r"\bbasically all\b"),
    "part": (r"\bpart(?:ial(?:ly)?)?\b", r"\bsome of\b", r"\bportion\b", r"\bonly\b", r"\blimited\b",
             r"\bcertain\b", r"\bnot all\b", r"\bselected?\b", r"\bcivilian\b"),
    "written": (r"\bwritten\b", r"\bin writing\b", r"\bdocument(?:ed)?\b", r"\bsigned\b"),
    "verbal": (r"\bverbal(?:ly)?\b", r"\bat (?:his|her|their) word\b", r"\bhis word\b", r"\btold me\b",
               r"\bpromised\b", r"\bspoken\b"),
    "permanent": (r"\bpermanent(?:ly)?\b", r"\birreversibl[ey]\b", r"\bforever\b", r"\bfor good\b"),
    "temporary": (r"\btemporar(?:y|ily)\b", r"\bsuspend(?:ed)?\b", r"\bfor now\b", r"\bfreeze\b",
                  r"\bmoratorium\b"),
    # a commitment that is checked (the "V" of CVID); one-sided, it has no opposite word
    "verified": (r"\bverifiab(?:le|ly|ility)\b", r"\bverif(?:y|ied|ication)\b", r"\bvalidat\w+\b",
                 r"\binspect(?:ion|ions|ors)\b", r"\bmonitored\b"),
}
_SCOPE_RE = {kind: re.compile("|".join(p), re.I) for kind, p in SCOPE_LEXICON.items()}
SCOPE_OPPOSITES = {("all", "part"), ("written", "verbal"), ("permanent", "temporary")}
ONE_SIDED_SCOPES = ("verified",)  # a difference when one claim has it and the other does not

_NOT_ALL = re.compile(r"\bnot\b[^.,;:]{0,30}?\ball\b", re.I)

_CONDITION_MARKS = {"if", "unless", "provided", "once", "until", "whether"}
_CONDITION_RE = re.compile(
    r"\b(in exchange for|in return(?: for)?|on (?:the )?condition(?: that)?|only (?:after|if|when|then|once)|"
    r"as long as|provided that|depends? on|depending on|conditional on|in order for|until|unless|"
    r"(?:^|[,;:] ?|\bthat )should (?:the|we|they|it|he|she|washington|pyongyang)\b|first [^,;.]{3,60}, (?:and )?(?:only )?then|"
    r"in stages|step[- ]by[- ]step|phased|simultaneous(?:ly)?|at the same time|in parallel|reciprocal|sequencing)\b",
    re.I)
_COND_LEAD = re.compile(r"[,;:]?\s*(?:that\s+)?", re.I)
_DEMAND_WORDS = re.compile(r"\b(insist(?:ed|s)?|want(?:ed|s)?|demand(?:ed|s)?|ask(?:ed|s)? for|request(?:ed|s)?)\b", re.I)
_EXCESS_WORDS = re.compile(r"\b(one more|beyond|everything|entirety|all of|more than|additional|extra)\b", re.I)
_HEDGES = {"may", "might", "could", "perhaps", "probably", "possibly", "maybe", "likely", "seem",
           "appear", "think", "believe", "hope", "guess", "would", "should"}
_NEGATIONS = {"not", "n't", "never", "no", "nothing", "neither", "nor", "none", "without"}
_QUANT_OF = re.compile(
    r"\b((?:\d[\d,.]*|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"half))\s+(?:out\s+)?of\s+(?:the\s+)?((?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|"
    r"eleven|twelve|twenty|thirty))\b", re.I)
_FIRST = {"we", "us", "our", "ours", "i", "me", "my"}
_THIRD = {"they", "them", "their", "theirs"}


def extract_frame(span: Span, *, self_id: str | None = None, other_id: str | None = None) -> Frame:
    """Fill a ``Frame`` from a parsed sentence span.

    ``self_id``/``other_id`` are the canonical ids of the claimer's side and of the
    other party, used to resolve "we" and "they" as agents and blamed actors.
    """
    frame = Frame()

    def canon(token: Token) -> str | None:
        return _canonical(token, span, self_id=self_id, other_id=other_id)

    _predicates(span, frame)
    _agent_and_theme(span, frame, canon)
    _negation_and_modality(span, frame)
    _quantities(span, frame)
    _scope(span, frame)
    _condition(span, frame)
    frame.time = [e.text for e in span.ents if e.label_ in {"DATE", "TIME"}]
    _blame(span, frame, canon)
    return frame


def _canonical(token: Token, span: Span, *, self_id: str | None, other_id: str | None) -> str | None:
    """The canonical id of the entity holding ``token``; "we" and "they" as the claimer's and the other side."""
    if token.ent_type_ and token.ent_iob_ != "O":
        for ent in span.doc.ents:
            if ent.start <= token.i < ent.end:
                return ent._.canonical if Span.has_extension("canonical") and ent._.canonical else ent.text
    low = token.lower_
    if low in _FIRST:
        return self_id
    if low in _THIRD:
        return other_id
    return None


def _predicates(span: Span, frame: Frame) -> None:
    """Predicate classes, the root first, then its verbal and nominal dependents; which are denied."""
    root = span.root
    classes: list[str] = []
    for tok in [root, *[t for t in span if t is not root]]:
        cls = _LEMMA_CLASS.get(tok.lemma_.lower())
        if cls and (tok is root or tok.pos_ in {"VERB", "NOUN", "AUX"}):
            if cls not in classes:
                classes.append(cls)
            if _is_negated(tok) and cls not in frame.negated:
                frame.negated.append(cls)
    frame.predicates = classes
    frame.predicate = classes[0] if classes else (root.lemma_.lower() if root.pos_ in {"VERB", "AUX"} else None)


def _agent_and_theme(span: Span, frame: Frame, canon: Callable[[Token], str | None]) -> None:
    """Agent: the subject of the root (or of the first predicate verb); theme: the first object."""
    root = span.root
    subjects = [t for t in span if t.dep_ in {"nsubj", "nsubjpass"} and t.head.i >= span.start]
    subject = next((t for t in subjects if t.head is root), subjects[0] if subjects else None)
    if subject is not None:
        frame.agent = canon(subject) or subject.text
    objects = [t for t in span if t.dep_ in {"dobj", "pobj", "attr", "oprd"} and t.head.i >= span.start]
    if objects:
        obj = objects[0]
        frame.theme = span.doc[obj.left_edge.i:obj.right_edge.i + 1].text[:120]


def _negation_and_modality(span: Span, frame: Frame) -> None:
    negated = [t for t in span if t.dep_ == "neg" or (t.lower_ in _NEGATIONS and t.dep_ in {"det", "neg", "advmod"})]
    if _is_negated(span.root):
        frame.polarity = "negative"
    for t in negated:
        frame.cues.append({"kind": "negation", "text": t.text, "start": t.idx, "end": t.idx + len(t.text)})
    frame.modality = sorted({t.lemma_.lower() for t in span
                             if t.lemma_.lower() in _HEDGES and t.tag_ in {"MD", "RB", "VB", "VBP", "VBZ", "VBD"}})


def _quantities(span: Span, frame: Frame) -> None:
    """"five of the eleven", then numeric entities; two counts of one thing make a part of a whole."""
    offset, text = span.start_char, span.text
    seen: set[tuple[int, int]] = set()
    for m in _QUANT_OF.finditer(text):
        start, end = offset + m.start(), offset + m.end()
        tail = span.doc.char_span(end, min(end + 40, span.end_char), alignment_mode="expand")
        unit = next((t.lemma_ for t in tail if t.pos_ == "NOUN"), None) if tail is not None else None
        frame.quantities.append({"text": m.group(0), "value": number_value(m.group(1)),
                                 "of": number_value(m.group(2)), "unit": unit, "start": start, "end": end})
        seen.add((start, end))
    for ent in span.ents:
        if ent.label_ not in NUMERIC_LABELS or any(s <= ent.start_char < e for s, e in seen):
            continue
        value = number_value(ent.text)
        if value is None:
            continue
        head = ent.root.head
        unit = head.lemma_ if head.pos_ == "NOUN" else None
        frame.quantities.append({"text": ent.text + (f" {head.text}" if unit and head.i == ent.end else ""),
                                 "value": value, "of": None, "unit": unit,
                                 "start": ent.start_char, "end": ent.end_char})
    # "Of the eleven resolutions ..., we asked for the removal of five": two counts of
    # one thing in a sentence, the smaller a part of the larger
    counts = [q for q in frame.quantities if q.get("of") is None and q["value"] is not None]
    if len(counts) == 2 and not any(q.get("of") for q in frame.quantities):
        small, large = sorted(counts, key=lambda q: q["value"])
        if small["value"] < large["value"] and (small.get("unit") in {None, large.get("unit")}) and large.get("unit"):
            small["of"], small["unit"] = large["value"], large["unit"]


def _scope(span: Span, frame: Frame) -> None:
    """Scope markers; "not (the lifting of) all" is a part, not an all; "five of eleven" a part."""
    offset, text = span.start_char, span.text
    not_all = [(m.start(), m.end()) for m in _NOT_ALL.finditer(text)]
    for kind, pattern in _SCOPE_RE.items():
        matches = [(m.start(), m.end(), m.group(0)) for m in pattern.finditer(text)]
        if kind == "all":
            matches = [m for m in matches if not any(s <= m[0] < e for s, e in not_all)]
        if kind == "part":
            matches += [(s, e, text[s:e]) for s, e in not_all]
        for start, end, surface in matches:
            if kind not in frame.scope:
                frame.scope.append(kind)
            frame.cues.append({"kind": f"scope:{kind}", "text": surface,
                               "start": offset + start, "end": offset + end})
    if frame.quantities and any(q.get("of") and q["value"] < q["of"] for q in frame.quantities):
        if "part" not in frame.scope:
            frame.scope.append("part")


def _condition(span: Span, frame: Frame) -> None:
    """A subordinate "if"-clause, else a conditional phrase ("in exchange for", "should the US ...")."""
    for tok in span:
        if tok.dep_ == "mark" and tok.lower_ in _CONDITION_MARKS and tok.head.dep_ == "advcl":
            clause = span.doc[tok.head.left_edge.i:tok.head.right_edge.i + 1]
            frame.condition = clause.text
            frame.cues.append({"kind": "condition", "text": clause.text, "start": clause.start_char,
                               "end": clause.end_char})
            return
    offset, text = span.start_char, span.text
    m = _CONDITION_RE.search(text)
    if m:
        lead = _COND_LEAD.match(m.group(0)).end()  # the ", " or "that " before an inverted "should"
        frame.condition = text[m.start() + lead:].split(",")[0][:160]
        frame.cues.append({"kind": "condition", "text": m.group(0)[lead:], "start": offset + m.start() + lead,
                           "end": offset + m.end()})


def _blame(span: Span, frame: Frame, canon: Callable[[Token], str | None]) -> None:
    """Who a failure is put on. An excessive demand ("they wanted everything", "the US insisted
    on one more measure") puts it on the demander, even when the speaker then refuses;
    otherwise the agent of the refusal or failure."""
    offset, text = span.start_char, span.text
    failure = _FAILURE_WORDS.search(text)
    demand = _DEMAND_WORDS.search(text)
    excessive = demand and (failure or _EXCESS_WORDS.search(text))
    cue = demand if excessive else failure
    if not cue:
        return
    frame.cues.append({"kind": "blame", "text": cue.group(0), "start": offset + cue.start(),
                       "end": offset + cue.end()})
    verb = span.doc.char_span(offset + cue.start(), offset + cue.end(), alignment_mode="expand")
    agent = None
    if verb is not None:
        head = verb.root
        while head is not None:
            subj = next((c for c in head.children if c.dep_ in {"nsubj", "nsubjpass"}), None)
            if subj is not None:
                agent = canon(subj) or subj.text
                break
            if head.head is head or head.i < span.start:
                break
            head = head.head
    frame.blame = agent or frame.agent


def _is_negated(tok: Token) -> bool:
    """"did not ask", "no testing", "was not the lifting": the predicate is denied.
    "cannot denuclearize without validating" states a requirement, not a denial."""
    if any(c.dep_ == "neg" or (c.dep_ == "det" and c.lower_ == "no") for c in tok.children):
        return not any(c.lower_ == "without" for c in tok.children)
    head = tok.head
    return (head is not tok and tok.dep_ in {"attr", "acomp", "xcomp", "oprd"}
            and any(c.dep_ == "neg" for c in head.children))
