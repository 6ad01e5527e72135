"""Rule-based claim corruption: domain NLI pairs without annotators (after FactCC).

Public NLI data is image captions (SNLI, SICK) and Wikipedia (ANLI); the pipeline
reads diplomatic statements. To show the classifier what a divergence between two
such statements looks like, each claim sentence is rewritten by rules whose effect
on truth is known:

* corruptions that make the two statements incompatible -> ``contradiction``:
  a number swapped, an entity swapped for another of the same type, a scope word
  flipped (all <-> part, written <-> verbal, permanent <-> temporary), a negation
  added or removed, a condition attached ("only if ...");
* meaning-preserving rewrites -> ``entailment``: digits <-> number words,
  contractions, a parenthetical or discourse marker dropped;
* information added or an unrelated sentence -> ``neutral``.

These are the same divergence types the report flags, so the classifier learns
them on in-domain text. Every transform is deterministic given the seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..stages.entities import NUMBER_WORDS
from .nli import LABEL2ID, split_sentences


def _spelled(low: int, high: int) -> dict[int, str]:
    """The whole numbers ``low``-``high`` spelled out, from the project's number table (the
    first word it gives each: "twelve", not "a dozen")."""
    out: dict[int, str] = {}
    for word, value in NUMBER_WORDS.items():
        if low <= value <= high and value == int(value):
            out.setdefault(int(value), word)
    return out


# numbers that edits rewrite as digits and back, or change
_WORD_OF = _spelled(1, 12)
_VALUE_OF = {w: v for v, w in _WORD_OF.items()}
_DIGITS = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w])")
_NUMWORD = re.compile(r"\b(" + "|".join(_WORD_OF.values()) + r")\b", re.I)

# Scope words and their opposites; matched on word boundaries, case kept.
SCOPE_SWAPS: dict[str, str] = {
    "all": "some", "some": "all", "entire": "partial", "partial": "entire", "whole": "part of the",
    "complete": "partial", "completely": "partly", "partly": "completely", "fully": "partly",
    "every": "one", "total": "partial", "written": "verbal", "verbal": "written",
    "permanent": "temporary", "temporary": "permanent", "permanently": "temporarily",
    "temporarily": "permanently", "always": "sometimes", "never": "sometimes", "most": "few",
    "many": "few", "few": "many", "only": "also", "formal": "informal", "informal": "formal",
    "full": "partial", "none": "some", "everything": "something",
}
_SCOPE = re.compile(r"\b(" + "|".join(sorted(SCOPE_SWAPS, key=len, reverse=True)) + r")\b", re.I)

_AUX = re.compile(
    r"\b(is|are|was|were|will|would|can|could|should|has|have|had|must|may|might|did|does|do)\b(?! not\b|n't)",
    re.I,
)
_NEG = re.compile(r"\b(is|are|was|were|will|would|can|could|should|has|have|had|must|did|does|do)(?: not|n't)\b", re.I)
_WONT = re.compile(r"\bwon't\b|\bcannot\b|\bcan't\b", re.I)

CONDITIONS: tuple[str, ...] = (
    "only if sanctions are lifted first",
    "only after the other side acts first",
    "on the condition that inspections are allowed",
    "as long as the talks continue",
    "only if a written guarantee is given",
    "provided that the other side makes concessions first",
    "but only once all the sanctions are removed",
    "only after a formal agreement is signed",
)

_CONTRACTIONS = {
    "do not": "don't", "does not": "doesn't", "did not": "didn't", "is not": "isn't", "are not": "aren't",
    "was not": "wasn't", "were not": "weren't", "will not": "won't", "cannot": "can't", "have not": "haven't",
    "has not": "hasn't", "would not": "wouldn't", "could not": "couldn't", "should not": "shouldn't",
}
_EXPANSIONS = {v: k for k, v in _CONTRACTIONS.items()}
_PAREN = re.compile(r"\s*\([^()]{1,80}\)")
_MARKER = re.compile(r"^(However|Also|Indeed|In fact|Meanwhile|Still|Moreover|Furthermore|So|Now|And|But),\s+", re.I)
_APPOSITIVE = re.compile(r",\s+(?:who|which)\s[^,]{3,80},")

SWAPPABLE_ENTITIES = ("PERSON", "ORG", "GPE", "NORP", "DATE", "LOC", "FAC", "EVENT")


@dataclass(frozen=True)
class CorruptedPair:
    premise: str
    hypothesis: str
    label: int  # index into schema.LABELS
    transform: str  # which rule produced it


def _keep_case(original: str, replacement: str) -> str:
    return replacement[:1].upper() + replacement[1:] if original[:1].isupper() else replacement


def _sub_one(pattern: re.Pattern[str], text: str, repl: Callable[[re.Match[str]], str | None], rng: random.Random) -> str | None:
    """Replace one randomly chosen match; None when nothing matched or repl declined."""
    matches = list(pattern.finditer(text))
    rng.shuffle(matches)
    for m in matches:
        new = repl(m)
        if new is not None and new != m.group(0):
            return text[: m.start()] + new + text[m.end():]
    return None


# --------------------------------------------------------------------------- contradictions


def swap_number(text: str, rng: random.Random) -> str | None:
    """Change one number (digits or a number word) to a clearly different one."""

    def other(value: int) -> int:
        choices = [value + d for d in (1, 2, 3, 5, 10) if value + d != value] + [value * 2, max(1, value // 2)]
        choices = [c for c in choices if c != value and c > 0]
        return rng.choice(choices)

    def digits(m: re.Match[str]) -> str | None:
        whole = m.group(1).replace(",", "")
        value = int(whole)
        if 1900 <= value <= 2100 and not m.group(2):  # a year: shift it, keep it a year
            return str(value + rng.choice((-2, -1, 1, 2)))
        new = other(value)
        out = f"{new:,}" if "," in m.group(1) else str(new)
        return out + (f".{m.group(2)}" if m.group(2) else "")

    def words(m: re.Match[str]) -> str | None:
        value = _VALUE_OF[m.group(1).lower()]
        new = other(value)
        return _keep_case(m.group(1), _WORD_OF.get(new, str(new)))

    return _sub_one(_DIGITS, text, digits, rng) or _sub_one(_NUMWORD, text, words, rng)


def swap_scope(text: str, rng: random.Random) -> str | None:
    return _sub_one(_SCOPE, text, lambda m: _keep_case(m.group(1), SCOPE_SWAPS[m.group(1).lower()]), rng)


def negate(text: str, rng: random.Random) -> str | None:
    """Remove a negation if there is one, else negate the first auxiliary verb."""
    m = _NEG.search(text)
    if m:
        return text[: m.start()] + m.group(1) + text[m.end():]
    m = _WONT.search(text)
    if m:
        word = m.group(0).lower()
        return text[: m.start()] + _keep_case(m.group(0), "will" if word == "won't" else "can") + text[m.end():]
    m = _AUX.search(text)
    if m:
        return text[: m.end()] + " not" + text[m.end():]
    return None


def add_condition(text: str, rng: random.Random) -> str | None:
    """Attach a condition the original statement does not make."""
    body = text.rstrip()
    end = body[-1] if body and body[-1] in ".!?" else ""
    body = body[:-1] if end else body
    if len(body.split()) < 4 or body.endswith("?"):
        return None
    return f"{body}, {rng.choice(CONDITIONS)}{end or '.'}"


def swap_entity(text: str, rng: random.Random, *, entities: Sequence[tuple[int, int, str]], pool: dict[str, list[str]]) -> str | None:
    """Replace one named entity with a different one of the same type from the pool."""
    spans = [e for e in entities if e[2] in SWAPPABLE_ENTITIES]
    rng.shuffle(spans)
    for start, end, label in spans:
        current = text[start:end]
        options = [o for o in pool.get(label, ()) if o.lower() != current.lower() and o.lower() not in text.lower()]
        if options:
            return text[:start] + rng.choice(options) + text[end:]
    return None


# --------------------------------------------------------------------------- meaning-preserving


def paraphrase(text: str, rng: random.Random) -> str | None:
    """A rewrite that keeps the meaning: number format, contractions, dropped asides."""
    rules = [
        lambda t: _sub_one(_NUMWORD, t, lambda m: str(_VALUE_OF[m.group(1).lower()]), rng),
        lambda t: _sub_one(
            re.compile(r"(?<![\d,.])([1-9]|1[0-2])(?![\d,.%])"), t, lambda m: _WORD_OF.get(int(m.group(1))), rng
        ),
        lambda t: _sub_one(re.compile(r"\b(" + "|".join(_CONTRACTIONS) + r")\b", re.I), t,
                           lambda m: _keep_case(m.group(1), _CONTRACTIONS[m.group(1).lower()]), rng),
        lambda t: _sub_one(re.compile(r"\b(" + "|".join(re.escape(k) for k in _EXPANSIONS) + r")", re.I), t,
                           lambda m: _keep_case(m.group(1), _EXPANSIONS[m.group(1).lower()]), rng),
        lambda t: (_MARKER.sub("", t)[:1].upper() + _MARKER.sub("", t)[1:]) if _MARKER.search(t) else None,
        lambda t: _PAREN.sub("", t, count=1) if _PAREN.search(t) else None,
        lambda t: _APPOSITIVE.sub("", t, count=1) if _APPOSITIVE.search(t) else None,
    ]
    rng.shuffle(rules)
    for rule in rules:
        out = rule(text)
        if out and out != text:
            return out
    return None


# --------------------------------------------------------------------------- driver


def _entity_index(sentences: Sequence[str], nlp: object | None) -> tuple[list[list[tuple[int, int, str]]], dict[str, list[str]]]:
    if nlp is None:
        return [[] for _ in sentences], {}
    per_sentence: list[list[tuple[int, int, str]]] = []
    pool: dict[str, set[str]] = {}
    for doc in nlp.pipe(sentences, batch_size=256):  # type: ignore[attr-defined]
        ents = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
        per_sentence.append(ents)
        for e in doc.ents:
            if e.label_ in SWAPPABLE_ENTITIES and 1 < len(e.text) < 40:
                pool.setdefault(e.label_, set()).add(e.text)
    return per_sentence, {k: sorted(v) for k, v in pool.items()}


def corrupt(
    sentences: Sequence[str],
    *,
    seed: int = 13,
    nlp: object | None = None,
    unrelated_rate: float = 0.5,
) -> list[CorruptedPair]:
    """Turn claim sentences into labelled NLI pairs.

    Each sentence yields at most one pair per applicable transform, plus (with
    probability ``unrelated_rate``) a neutral pair with another sentence. ``nlp`` is a
    spaCy pipeline with NER for entity swaps; without it entity swaps are skipped.
    """
    rng = random.Random(seed)
    sentences = [s.strip() for s in sentences if 5 <= len(s.split()) <= 60]
    entities, pool = _entity_index(sentences, nlp)
    contradiction, entailment, neutral = LABEL2ID["contradiction"], LABEL2ID["entailment"], LABEL2ID["neutral"]
    pairs: list[CorruptedPair] = []
    for i, sent in enumerate(sentences):
        transforms: list[tuple[str, int, str | None]] = [
            ("number_swap", contradiction, swap_number(sent, rng)),
            ("entity_swap", contradiction, swap_entity(sent, rng, entities=entities[i], pool=pool)),
            ("scope_swap", contradiction, swap_scope(sent, rng)),
            ("negation", contradiction, negate(sent, rng)),
            ("added_condition", contradiction, add_condition(sent, rng) if rng.random() < 0.3 else None),
            ("paraphrase", entailment, paraphrase(sent, rng)),
        ]
        for name, label, hyp in transforms:
            if hyp:
                # Present either order for symmetric corruptions so the model does not
                # learn "the longer sentence is the hypothesis".
                if label == contradiction and name != "added_condition" and rng.random() < 0.5:
                    pairs.append(CorruptedPair(hyp, sent, label, name))
                else:
                    pairs.append(CorruptedPair(sent, hyp, label, name))
        if transforms[-1][2] is None and rng.random() < 0.2:  # no rewrite applies: a statement entails itself
            pairs.append(CorruptedPair(sent, sent, entailment, "identity"))
        # Dropping an aside loses information: full -> short entails, short -> full is neutral.
        shorter = _PAREN.sub("", sent, count=1) if _PAREN.search(sent) else (
            _APPOSITIVE.sub("", sent, count=1) if _APPOSITIVE.search(sent) else None
        )
        if shorter and shorter != sent:
            pairs.append(CorruptedPair(shorter, sent, neutral, "added_information"))
        if len(sentences) > 1 and rng.random() < unrelated_rate:
            j = rng.randrange(len(sentences) - 1)
            j = j + 1 if j >= i else j
            pairs.append(CorruptedPair(sent, sentences[j], neutral, "unrelated"))
    return pairs


def corpus_sentences(corpora_dir: str | Path, *, limit: int | None = None) -> list[str]:
    """Claim-like sentences of every ``.txt`` under ``corpora_dir``: prose lines only
    (speaker labels, stage notes and short headers are not claims)."""
    out: list[str] = []
    label = re.compile(r"^[A-Z][A-Z .'-]{1,40}:\s*")
    for file in sorted(Path(corpora_dir).rglob("*.txt")):
        text = file.read_text(encoding="utf-8", errors="replace")
        for para in re.split(r"\n\s*\n", text):
            para = label.sub("", para.strip())
            if para.startswith("(") or len(para.split()) < 5:
                continue
            # questions are not claims
            out.extend(s for s in split_sentences(para) if not s.startswith("(") and not s.endswith("?"))
    return out[:limit] if limit else out


def pairs_to_dataset(pairs: Iterable[CorruptedPair], *, source: str = "domain"):
    from datasets import Dataset

    rows = list(pairs)
    return Dataset.from_dict(
        {
            "premise": [p.premise for p in rows],
            "hypothesis": [p.hypothesis for p in rows],
            "label": [p.label for p in rows],
            "source": [source] * len(rows),
            "transform": [p.transform for p in rows],
        }
    )
