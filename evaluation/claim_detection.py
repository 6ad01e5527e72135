"""Claim detection precision / recall against the hand labels of the Hanoi case.

    python evaluation/claim_detection.py [--labels evaluation/labels/hanoi-claims.jsonl]
        [--case corpora/hanoi-2019] [--threshold 0.5] [--sweep] [--out results.json]

A predicted claim matches a labelled unit when their character spans overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.stages.claims import extract_claims  # noqa: E402
from pipeline.config import RunConfig  # noqa: E402
from pipeline.stages.ingest import read_case  # noqa: E402
from pipeline.manifest import load_manifest  # noqa: E402
from pipeline.models import build_nlp  # noqa: E402


def score(labels: list[dict], claims, threshold: float) -> dict[str, float]:
    predicted = [(c.doc_id, c.start, c.end) for c in claims if c.score >= threshold]

    def hit(unit: dict) -> bool:
        return any(d == unit["doc_id"] and s < unit["end"] and unit["start"] < e for d, s, e in predicted)

    tp = sum(1 for u in labels if u["claim"] and hit(u))
    fp = sum(1 for u in labels if not u["claim"] and hit(u))
    fn = sum(1 for u in labels if u["claim"] and not hit(u))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"threshold": threshold, "precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3),
            "tp": tp, "fp": fp, "fn": fn}


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
    claims = extract_claims(case, documents, nlp=build_nlp(RunConfig()), threshold=0.0)
    rows = [score(labels, claims, args.threshold)]
    if args.sweep:
        rows += [score(labels, claims, t / 10) for t in range(2, 9) if t / 10 != args.threshold]
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
