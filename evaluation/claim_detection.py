"""Claim detection precision / recall against the hand labels of the Hanoi case.

    python evaluation/claim_detection.py [--labels evaluation/labels/hanoi-claims.jsonl]
        [--case corpora/hanoi-2019] [--threshold 0.5] [--sweep] [--out results.json]

A predicted claim matches a labelled unit when their character spans overlap. The claims
stage's output and the labels become spaCy ``Example``s (one per document: the claims with
their scores in ``doc.spans["claims"]``, the labelled units in ``doc.spans["claim_units"]``),
scored by the ``divergence_claims`` component's ``score()`` (``claim_detector.claim_prf``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from spacy.language import Language  # noqa: E402
from spacy.tokens import SpanGroup  # noqa: E402
from spacy.training import Example  # noqa: E402

from pipeline.config import RunConfig  # noqa: E402
from pipeline.manifest import load_manifest  # noqa: E402
from pipeline.models import build_nlp  # noqa: E402
from pipeline.schema import Claim, Document  # noqa: E402
from pipeline.stages.claim_detector import CLAIMS_KEY, UNITS_KEY, claim_prf  # noqa: E402
from pipeline.stages.claims import extract_claims  # noqa: E402
from pipeline.stages.ingest import read_case  # noqa: E402


def examples(nlp: Language, documents: list[Document], claims: list[Claim], labels: list[dict]) -> list[Example]:
    """One ``Example`` per labelled document: the stage's claims against the labelled units."""
    texts = {d.id: d.text for d in documents}
    found, units = defaultdict(list), defaultdict(list)
    for claim in claims:
        found[claim.doc_id].append(claim)
    for unit in labels:
        units[unit["doc_id"]].append(unit)
    missing = sorted(set(units) - set(texts))
    if missing:
        raise SystemExit(f"labels name documents the case does not have: {', '.join(missing)}")
    pairs = []
    for doc_id, labelled in units.items():
        predicted, reference = nlp.make_doc(texts[doc_id]), nlp.make_doc(texts[doc_id])
        predicted.spans[CLAIMS_KEY] = SpanGroup(
            predicted, name=CLAIMS_KEY, attrs={"scores": [c.score for c in found[doc_id]]},
            spans=[predicted.char_span(c.start, c.end, alignment_mode="expand") for c in found[doc_id]])
        reference.spans[UNITS_KEY] = [
            reference.char_span(u["start"], u["end"], label="claim" if u["claim"] else "other", alignment_mode="expand")
            for u in labelled]
        pairs.append(Example(predicted, reference))
    return pairs


def score(nlp: Language, pairs: list[Example], threshold: float) -> dict[str, float]:
    """The component's ``score()`` at ``threshold``, with the counts behind it."""
    figures = nlp.get_pipe("divergence_claims").score(pairs, threshold=threshold)
    prf = claim_prf(pairs, threshold=threshold)
    return {"threshold": threshold, "precision": round(figures["claims_p"], 3), "recall": round(figures["claims_r"], 3),
            "f1": round(figures["claims_f"], 3), "tp": prf.tp, "fp": prf.fp, "fn": prf.fn}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=REPO / "evaluation" / "labels" / "hanoi-claims.jsonl")
    parser.add_argument("--case", type=Path, default=REPO / "corpora" / "hanoi-2019")
    parser.add_argument("--threshold", type=float, default=RunConfig.claim_threshold)
    parser.add_argument("--sweep", action="store_true", help="also print thresholds 0.2 .. 0.8")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    labels = [json.loads(line) for line in args.labels.read_text().splitlines() if line.strip()]
    case = load_manifest(args.case)
    documents, _ = read_case(case)
    nlp = build_nlp(RunConfig())
    pairs = examples(nlp, documents, extract_claims(case, documents, nlp=nlp, threshold=0.0), labels)
    rows = [score(nlp, pairs, args.threshold)]
    if args.sweep:
        rows += [score(nlp, pairs, t / 10) for t in range(2, 9) if t / 10 != args.threshold]
    print(f"claim detection on {args.case.name}: {sum(u['claim'] for u in labels)} labelled claims "
          f"in {len(labels)} units")
    print(f"{'threshold':>9} {'precision':>9} {'recall':>7} {'f1':>6} {'tp':>4} {'fp':>4} {'fn':>4}")
    for r in rows:
        print(f"{r['threshold']:>9.2f} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>6.3f} "
              f"{r['tp']:>4} {r['fp']:>4} {r['fn']:>4}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
