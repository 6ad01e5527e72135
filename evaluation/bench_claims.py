"""Throughput of the claims stage against a bare en_core_web_sm ``nlp.pipe`` (issue #3).

    python evaluation/bench_claims.py [--words 100000] [--batch-size 64]

The Hanoi case is repeated until it holds ``--words`` words. The claims stage
(gazetteer ruler + canonicaliser + attribution + claim scoring + frames) runs over
it; the baseline is the bare spaCy model piping the same paragraphs. Prints
words/s for both and their ratio (goal: >= 0.7).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.stages.claims import extract_claims  # noqa: E402
from pipeline.config import RunConfig  # noqa: E402
from pipeline.stages.ingest import paragraphs, read_case  # noqa: E402
from pipeline.manifest import load_manifest  # noqa: E402
from pipeline.models import build_nlp, load_spacy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, default=REPO / "corpora" / "hanoi-2019")
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    case = load_manifest(args.case)
    base_docs, _ = read_case(case)
    words_once = sum(len(d.text.split()) for d in base_docs)
    copies = max(1, round(args.words / words_once))
    documents = [replace(d, spec=replace(d.spec, id=f"{d.spec.id}-{i}")) for i in range(copies) for d in base_docs]
    total_words = words_once * copies
    texts = [d.text[s:e] for d in documents for s, e, _ in paragraphs(d.text, d.turns)]

    config = RunConfig()
    bare = load_spacy(config.spacy_model)
    nlp = build_nlp(config)
    for _ in bare.pipe(texts[:50]):  # warm up both
        pass
    extract_claims(case, base_docs, nlp=nlp)

    start = time.perf_counter()
    for _ in bare.pipe(texts, batch_size=args.batch_size):
        pass
    t_bare = time.perf_counter() - start
    start = time.perf_counter()
    claims = extract_claims(case, documents, nlp=nlp, batch_size=args.batch_size)
    t_stage = time.perf_counter() - start

    print(f"input: {args.case.name} x{copies} = {total_words:,} words, {len(texts):,} paragraphs")
    print(f"bare {config.spacy_model} nlp.pipe : {t_bare:7.1f} s  {total_words / t_bare:8,.0f} words/s")
    print(f"claims stage ({len(claims):,} claims): {t_stage:7.1f} s  {total_words / t_stage:8,.0f} words/s")
    print(f"throughput ratio (stage / bare): {t_bare / t_stage:.2f}  (goal >= 0.70)")


if __name__ == "__main__":
    main()
