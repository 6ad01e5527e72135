"""Domain entities and their canonical ids, as spaCy components.

Gazetteers are data (spaCy EntityRuler pattern files, ``corpora/gazetteers/*.jsonl``,
``{"label", "pattern", "id"}``), so a user adds a domain without touching Python.
The ruler runs before the statistical NER so "Yongbyon" is a FACILITY and
"Pyongyang" the state it stands for; the canonicaliser then gives every entity an
id — the ruler's ``id`` where a pattern matched, otherwise a normalised form —
and ``canonicalise_case`` links short mentions ("Kim") to the full names used
elsewhere in the same case.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import registry

from ..config import DEFAULT_GAZETTEER_DIR
from ..errors import Errors, ModelError

_TITLES = re.compile(
    r"^(?:the\s+)?(?:(?:president|chairman|chair|secretary(?:\s+of\s+state)?|state|foreign|vice|deputy|"
    r"minister|prime|general|special|representative|ambassador|mr|mrs|ms|dr|leader|premier|"
    r"supreme|comrade|first|senator|spokesperson|spokesman)\.?\s+)+",
    re.I,
)
# The project's one table of number words: read here (number_value), and written by the
# edited-claim generator (pipeline.datasets.corruption), which spells small numbers with it.
NUMBER_WORDS: dict[str, float] = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000,
                     "a dozen": 12, "dozen": 12, "half": 0.5, "a half": 0.5})
NUMERIC_LABELS = {"CARDINAL", "QUANTITY", "MONEY", "PERCENT"}


def number_value(text: str) -> float | None:
    """The numeric value of "five", "11", "2,500", "32,000" or "half"; None otherwise."""
    t = text.lower().strip().replace(",", "")
    t = re.sub(r"^(?:about|around|roughly|some|nearly|almost|over|more than|less than|only)\s+", "", t)
    m = re.match(r"^\$?(\d+(?:\.\d+)?)\s*(million|billion|thousand|hundred)?", t)
    if m:
        value = float(m.group(1))
        scale = {"million": 1e6, "billion": 1e9, "thousand": 1e3, "hundred": 1e2}.get(m.group(2) or "", 1)
        return value * scale
    words = t.split()
    if words and words[0] in NUMBER_WORDS:
        return float(NUMBER_WORDS[words[0]])
    return None


def slug(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", text.upper()).strip("-")


def normalise_mention(text: str, label: str) -> str:
    """Canonical form of a mention with no gazetteer id: titles, articles and 's dropped."""
    t = re.sub(r"[’']s$", "", text.strip())
    if label in NUMERIC_LABELS:
        value = number_value(t)
        if value is not None:
            return f"NUM:{value:g}"
    if label in {"PERSON", "ORG", "GPE", "NORP", "FAC", "FACILITY", "LOC", "EVENT"}:
        t = _TITLES.sub("", t)
        t = re.sub(r"^the\s+", "", t, flags=re.I)
    return slug(t) or slug(text)


def gazetteer_files(extra: Iterable[str | Path] = (), *, directory: Path = DEFAULT_GAZETTEER_DIR) -> list[Path]:
    files = sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
    for item in extra:
        path = Path(item)
        found = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        for f in found:
            if not f.is_file():
                raise ModelError(Errors.E014, path=f, detail="gazetteer file does not exist")
        files.extend(found)
    return files


def read_patterns(files: Iterable[Path]) -> list[dict]:
    patterns: list[dict] = []
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise ModelError(Errors.E014, path=f"{path}:{n}", detail=f"bad gazetteer line: {err.msg}") from None
            if "label" not in item or "pattern" not in item:
                raise ModelError(Errors.E014, path=f"{path}:{n}", detail="gazetteer line needs label and pattern")
            patterns.append(item)
    return patterns


@registry.readers("divergence.gazetteer_patterns.v1")
def gazetteer_patterns(extra: list[str] | None = None, directory: str | None = None) -> list[dict]:
    """The patterns of the bundled gazetteers (``directory``, default ``corpora/gazetteers``) and
    of the ``extra`` files or folders, for ``[initialize.components.divergence_gazetteer.patterns]``."""
    folder = Path(directory) if directory is not None else DEFAULT_GAZETTEER_DIR
    return read_patterns(gazetteer_files(extra or (), directory=folder))


def add_gazetteers(nlp: Language, files: Iterable[Path]) -> None:
    """Add an EntityRuler before the NER, matching phrases case-insensitively (as
    ``pipeline/data/config.cfg`` has it), to a pipeline of your own."""
    patterns = read_patterns(files)
    if not patterns:
        return
    before = {"before": "ner"} if "ner" in nlp.pipe_names else {}
    ruler = nlp.add_pipe("entity_ruler", name="divergence_gazetteer", **before,
                         config={"phrase_matcher_attr": "LOWER", "overwrite_ents": True})
    with nlp.select_pipes(enable=[]):  # pattern docs need only the tokenizer
        ruler.add_patterns(patterns)


# --- the canonicaliser component -------------------------------------------------------

if not Span.has_extension("canonical"):
    Span.set_extension("canonical", default=None)


@Language.factory("divergence_canonicalizer", default_config={"aliases": {}})
def make_canonicalizer(nlp: Language, name: str, aliases: dict[str, str]) -> "Canonicalizer":
    """Sets ``ent._.canonical`` on every entity (version 1)."""
    return Canonicalizer(aliases=aliases)


class Canonicalizer:
    version = 1

    def __init__(self, *, aliases: dict[str, str] | None = None) -> None:
        # lower-cased surface form -> canonical id, e.g. from a case's [sides] aliases
        self.aliases = {k.lower(): v for k, v in (aliases or {}).items()}

    def __call__(self, doc: Doc) -> Doc:
        for ent in doc.ents:
            ent._.canonical = self.canonical(ent)
        return doc

    def canonical(self, ent: Span) -> str:
        if ent.ent_id_:
            return ent.ent_id_
        key = re.sub(r"[’']s$", "", ent.text.strip()).lower()
        if key in self.aliases:
            return self.aliases[key]
        return normalise_mention(ent.text, ent.label_)


def canonicalise_case(mentions: list[tuple[str, str, str]]) -> dict[str, str]:
    """Cross-document linking: map a short PERSON id to the unique longer one that ends with it.

    ``mentions`` are (text, label, canonical) over the whole case. "KIM" stays itself
    when both "KIM-JONG-UN" and "KIM-YONG-CHOL" were seen; "MOON" becomes "MOON-JAE-IN"
    when that is the only candidate.
    """
    persons = Counter(c for _, label, c in mentions if label == "PERSON")
    by_last: dict[str, set[str]] = defaultdict(set)
    for cid in persons:
        parts = cid.split("-")
        if len(parts) > 1:
            by_last[parts[-1]].add(cid)
            by_last[parts[0]].add(cid)  # Korean names put the family name first
    remap: dict[str, str] = {}
    for cid in persons:
        if "-" in cid:
            continue
        candidates = by_last.get(cid, set())
        if len(candidates) == 1:
            remap[cid] = next(iter(candidates))
    return remap
