"""Speaker turns of a transcript: labels ("THE PRESIDENT:", "Q", "Vladimir Putin:"), roles, stage notes.

Part of the ingest stage (``ingest.read_document`` calls ``segment_turns``): the turn
decides whose claim a sentence is, and whether it is anybody's (reporters' questions,
moderators and stage notes are not).
"""

from __future__ import annotations

import difflib
import re

from ..manifest import document_format
from ..schema import CaseSpec, DocumentSpec, Turn
from .sentences import DROP_INVISIBLE, INVISIBLE

# Published transcripts put Unicode whitespace around labels ("MS. PSAKI:\u00a0 Hi",
# "Q\u00a0\u00a0\u00a0 On Russia"): horizontal whitespace is any whitespace but a newline,
# and a line may open with invisible characters (zero-width space, soft hyphen, BOM).
_H = r"[^\S\n]"
_LEAD = rf"^(?:{_H}|[{INVISIBLE}])*"
# A speaker label at the start of a line: "THE PRESIDENT:", "FOREIGN MINISTER RI:",
# "SECRETARY POMPEO:", "Q:", "Q.", "Q  Mr. President, ..." or "Q" alone on its line.
_UPPER_LABEL = re.compile(
    rf"{_LEAD}(?P<label>(?:[A-Z][A-Z.'’\-]*)(?:{_H}+[A-Z][A-Z.'’\-]*){{0,5}}){_H}*:(?={_H}|$)", re.M)
_Q_LABEL = re.compile(rf"{_LEAD}(?P<label>Q)(?:\.?{_H}*:|\.?{_H}+(?=\S)|\.?{_H}*$)", re.M)
# "[Senior administration official]:" - a placeholder the publisher put for a name
_BRACKET_LABEL = re.compile(rf"{_LEAD}\[(?P<label>[^\[\]\n:]{{2,60}})\]{_H}*:(?={_H}|$)", re.M)
# "Vladimir Putin:", "Question:", "President of Russia Vladimir Putin:" (mixed case)
_MIXED_LABEL = re.compile(rf"{_LEAD}(?P<label>[A-Z][\w.'’\-]*(?:{_H}+[\w.'’\-]+){{0,5}}){_H}*:(?P<rest>{_H}+\S|$)", re.M)
# lower-case words allowed inside a name or title ("President of Russia", "Ursula von der Leyen")
_NAME_CONNECTORS = frozenset({"of", "the", "for", "and", "de", "da", "del", "della", "di", "du", "la", "le",
                              "von", "van", "der", "den", "al", "el", "bin", "ibn"})
# Stage and interpreter notes: "(Laughter.)", "(As interpreted.)", "(Inaudible)".
# a note starts with one of these (whole words): "(Laughter.)", "(As interpreted.)", "(Speaks in Korean.)"
_STAGE_NOTE = re.compile(
    r"^(?:laughter|laughs|applause|inaudible|crosstalk|cross talk|as interpreted|via interpreter|"
    r"interpreter|interpretation|translation|translated|off mic|off-mic|break|pause|end|recess|"
    r"speaks in \w+|in (?:korean|english|vietnamese|chinese)|audio (?:cuts|drops|unavailable)|"
    r"unintelligible|technical difficulties|pool spray|music|silence|no response)\b[^()]*$", re.I)
_PAREN = re.compile(r"\(([^()\n]{1,80})\)")
QUESTION_LABELS = {"Q", "QUESTION", "REPORTER", "JOURNALIST", "AUDIENCE MEMBER", "AUDIENCE QUESTION",
                    "PARTICIPANT", "CORRESPONDENT"}
_MODERATOR_LABELS = {"MODERATOR", "OPERATOR", "ANNOUNCER", "MC", "HOST", "PRESENTER", "CHAIR", "CHAIRMAN"}
# An interpreter's turn renders what the previous speaker said: it is that speaker's turn.
_INTERPRETER_LABELS = {"INTERPRETER", "THE INTERPRETER", "TRANSLATOR", "THE TRANSLATOR", "INTERPRETATION"}


def _alias_set(case: CaseSpec) -> frozenset[str]:
    names = {a.upper() for side in case.sides.values() for a in side.aliases}
    names |= {_clean_label(d.speaker).upper() for d in case.documents if d.speaker}
    return frozenset(names)


def _clean_label(label: str) -> str:
    """"MS.\\u00a0 PSAKI" -> "MS. PSAKI": one plain space between the words, nothing invisible."""
    return " ".join(label.translate(DROP_INVISIBLE).split())


def _label_kind(label: str) -> str:
    """question | moderator | interpreter | speaker, tolerant of case and one-letter typos ("OPERTATOR")."""
    up = label.upper()
    for kind, names in (("question", QUESTION_LABELS), ("moderator", _MODERATOR_LABELS),
                        ("interpreter", _INTERPRETER_LABELS)):
        if up in names:
            return kind
    if len(up) >= 6:
        for kind, names in (("moderator", _MODERATOR_LABELS), ("interpreter", _INTERPRETER_LABELS),
                            ("question", QUESTION_LABELS)):
            if any(len(n) >= 6 and difflib.SequenceMatcher(None, up, n).ratio() >= 0.88 for n in names):
                return kind
    return "speaker"


def _name_like(label: str) -> bool:
    """"Vladimir Putin", "President of Russia Vladimir Putin": capitalised words, no sentence words.

    Keeps "On Russia:", "Another example:" or "The question is:" (phrases that end in a
    colon inside speech) from being taken for labels.
    """
    from spacy.lang.en.stop_words import STOP_WORDS

    words = label.split()
    if len(words) < 2 or len(words) > 6:
        return False
    for i, word in enumerate(words):
        bare = word.strip(".'’-")
        if not bare:
            return False
        if bare.lower() in _NAME_CONNECTORS and 0 < i < len(words) - 1:
            continue
        if not bare[0].isupper() or bare.lower() in STOP_WORDS or any(ch.isdigit() for ch in bare):
            return False
    return True


def _find_labels(text: str, aliases: frozenset[str]) -> list[tuple[int, int, str]]:
    """(label start, content start, label) for every speaker label in the text.

    Upper-case labels, ``Q``, and bracketed placeholders are labels wherever they open a
    line. A mixed-case label is one when it names a known speaker (an alias), is a role
    ("Question:", "Moderator:"), or looks like a name and the text uses such labels
    (the same one opens two lines, or two other mixed-case labels were found).
    """
    found: dict[int, tuple[int, int, str]] = {}
    for m in _UPPER_LABEL.finditer(text):
        label = _clean_label(m.group("label"))
        # One capital letter and a colon is too weak to be a label, except "Q"/"A".
        if len(label) < 2 and label not in {"Q", "A"}:
            continue
        found[m.start("label")] = (m.start("label"), m.end(), label)
    for m in _Q_LABEL.finditer(text):
        found.setdefault(m.start("label"), (m.start("label"), m.end(), "Q"))
    for m in _BRACKET_LABEL.finditer(text):
        # the turn starts after "]:", the label is what the brackets hold
        found.setdefault(m.start("label") - 1, (m.start("label") - 1, m.end(), _clean_label(m.group("label"))))
    candidates: list[tuple[int, int, str]] = []
    for m in _MIXED_LABEL.finditer(text):
        if m.start("label") in found:
            continue
        label = _clean_label(m.group("label"))
        end = m.end("rest") - (1 if m.group("rest") else 0)
        up = label.upper()
        if up in aliases or label.split()[-1].upper() in aliases or _label_kind(label) != "speaker":
            found[m.start("label")] = (m.start("label"), end, label)
        elif m.group("rest") and _name_like(label):  # a name with speech after it on the same line
            candidates.append((m.start("label"), end, label))
    if candidates:
        mixed_found = sum(1 for _, _, label in found.values() if not label.isupper())
        repeats: dict[str, int] = {}
        for _, _, label in candidates:
            repeats[label] = repeats.get(label, 0) + 1
        for start, end, label in candidates:
            if repeats[label] >= 2 or mixed_found + len(repeats) - 1 >= 2:
                found[start] = (start, end, label)
    return [found[k] for k in sorted(found)]


def _is_stage_note(inner: str) -> bool:
    return bool(_STAGE_NOTE.match(inner.strip()))


def _speaker_for(label: str | None, spec: DocumentSpec, main_label: str | None, has_labels: bool) -> str | None:
    if label is None:
        # Text before the first label of a transcript is its heading, spoken by nobody.
        return None if has_labels else spec.speaker
    if label == main_label and spec.speaker:
        return spec.speaker
    kind = _label_kind(label)
    if kind == "question":
        return "Reporter"
    if kind == "moderator":
        return label.title() if label.isupper() else label
    return label.title() if label.isupper() else label


def _role_for(label: str | None, has_labels: bool) -> str:
    if label is None:
        return "narration" if not has_labels else "header"
    kind = _label_kind(label)
    if kind == "question":
        return "question"
    if kind == "moderator":
        return "stage"
    return "statement"


def _asks(text: str) -> bool:
    """Whether a stretch of speech ends on a question mark (closing quotes and brackets aside)."""
    return text.rstrip().rstrip("\"'”’)]").endswith("?")


def segment_turns(text: str, *, spec: DocumentSpec, aliases: frozenset[str] = frozenset()) -> list[Turn]:
    """Split a transcript into turns at speaker labels, with stage notes as turns of their own.

    The document's main speaker is the most frequent non-question label ("THE PRESIDENT"
    in a White House transcript), which takes the manifest's ``speaker`` name. Reporters'
    questions and moderators get roles that never yield a party's claims: besides the
    role labels ("Q", "Question:", "MODERATOR:"), a named label that is neither the main
    speaker nor a side's alias and whose every turn ends on a question mark is a
    journalist asking. An interpreter's turn is the previous speaker's.
    """
    labels = _find_labels(text, aliases)
    counts: dict[str, int] = {}
    for _, _, label in labels:
        if _label_kind(label) == "speaker":
            counts[label] = counts.get(label, 0) + 1
    manifest_label = _clean_label(spec.speaker).upper() if spec.speaker else None
    main = next((label for label in counts if label.upper() == manifest_label), None)
    if main is None and counts:
        main = max(counts, key=counts.get)  # type: ignore[arg-type]
    bounds: list[tuple[int, int, str | None]] = []  # (content start, content end, label)
    if not labels or labels[0][0] > 0:
        bounds.append((0, labels[0][0] if labels else len(text), None))
    for i, (_, content_start, label) in enumerate(labels):
        end = labels[i + 1][0] if i + 1 < len(labels) else len(text)
        bounds.append((content_start, end, label))
    askers = {label for label in counts if label != main and label.upper() not in aliases
              and label.split()[-1].upper() not in aliases
              and all(_asks(text[s:e]) for s, e, lab in bounds if lab == label)}

    # an article's opening (headline, lead) is the article's, labels or not further down
    article = document_format(spec) == "article"
    turns: list[Turn] = []
    previous: tuple[str | None, str] | None = None  # the last labelled speaker and role
    for start, end, label in bounds:
        speaker = _speaker_for(label, spec, main, bool(labels) and not article)
        role = _role_for(label, bool(labels) and not article)
        if label in askers:
            speaker, role = label, "question"
        if label is not None and _label_kind(label) == "interpreter":
            speaker, role = previous if previous is not None else (None, "stage")
        elif label is not None:
            previous = (speaker, role)
        cursor = start
        for m in _PAREN.finditer(text, start, end):
            if not _is_stage_note(m.group(1)):
                continue
            _append_trimmed(turns, text, cursor, m.start(), speaker, role, label)
            turns.append(Turn(speaker=None, role="stage", start=m.start(), end=m.end(), label=None))
            cursor = m.end()
        _append_trimmed(turns, text, cursor, end, speaker, role, label)
    return turns


def _append_trimmed(turns: list[Turn], text: str, start: int, end: int, speaker: str | None,
                    role: str, label: str | None) -> None:
    chunk = text[start:end]
    stripped = chunk.strip()
    if not stripped or all(not c.isalnum() for c in stripped):
        return
    lead = len(chunk) - len(chunk.lstrip())
    trail = len(chunk) - len(chunk.rstrip())
    turns.append(Turn(speaker=speaker, role=role, start=start + lead, end=end - trail, label=label))
