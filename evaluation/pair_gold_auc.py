"""Can the pair classifier tell the gold events' divergent pairs from their agreeing pairs?

    python evaluation/pair_gold_auc.py --models minilm-lora-v1,minilm-lora-v3 [--gold ../shared/gold] [--out FILE]

For every gold event (``../shared/gold/*.json``, CONTRACTS §4), the two-sided gold pairs:
divergences with both statements (omissions have none on one side) are positives,
agreements negatives. Each pair is scored in both directions (a->b and b->a) and
ROC AUC is reported for two scores: max P(contradiction) over the directions, and
1 - max P(entailment). Pooled over all events and, because the issue's figure is the
mean over events, per event where an event has both kinds. No model was trained or
tuned on these pairs; they are development data, so nothing is fitted here either.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from pipeline.scoring.gold import load_gold  # noqa: E402


def gold_pairs(folder: Path) -> list[tuple[str, str, str, bool]]:
    """(event id, statement a, statement b, is_divergent) for every two-sided gold pair."""
    out = []
    for path in sorted(folder.glob("*.json")):
        event = load_gold(path)

        def text(ref):
            return event.document(ref.doc_id).statements[ref.index]

        for item in (*event.divergences, *event.agreements):
            if item.b is None:
                continue
            out.append((event.id, text(item.a), text(item.b), item.kind == "divergence"))
    return out


def auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return None
    return round(float(roc_auc_score(positive, scores)), 4)


def score_model(ref: str, pairs, *, precision: str = "fp32") -> dict:
    from pipeline.stages.classifier import PairClassifier

    clf = PairClassifier.load(ref, precision=precision)
    forward = clf.predict_proba([(a, b) for _, a, b, _ in pairs])
    backward = clf.predict_proba([(b, a) for _, a, b, _ in pairs])
    p_contra = np.maximum(forward[:, 2], backward[:, 2])
    p_entail = np.maximum(forward[:, 0], backward[:, 0])
    positive = np.asarray([d for *_, d in pairs])
    events = np.asarray([e for e, *_ in pairs])
    per_event = {}
    for ev in sorted(set(events)):
        mask = events == ev
        per_event[ev] = {"n_div": int(positive[mask].sum()), "n_agr": int((~positive[mask]).sum()),
                         "auc_contra": auc(p_contra[mask], positive[mask]),
                         "auc_not_entail": auc(1 - p_entail[mask], positive[mask])}
    scored = [v for v in per_event.values() if v["auc_contra"] is not None]
    return {
        "model": clf.version,
        "n_divergent": int(positive.sum()),
        "n_agreeing": int((~positive).sum()),
        "auc_max_p_contradiction": auc(p_contra, positive),
        "auc_one_minus_p_entailment": auc(1 - p_entail, positive),
        "mean_event_auc_contra": round(float(np.mean([v["auc_contra"] for v in scored])), 4) if scored else None,
        "mean_event_auc_not_entail": round(float(np.mean([v["auc_not_entail"] for v in scored])), 4) if scored else None,
        "events_with_both": len(scored),
        "per_event": per_event,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="default", help="comma-separated version names (or 'default')")
    ap.add_argument("--gold", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "gold")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    pairs = gold_pairs(args.gold)
    results = [score_model(ref.strip(), pairs) for ref in args.models.split(",") if ref.strip()]
    print(f"{len(pairs)} two-sided gold pairs from {args.gold}")
    print(f"{'model':24s} {'n div/agr':>10s} {'AUC maxPc':>10s} {'AUC 1-Pe':>9s} {'event-mean Pc':>14s} {'event-mean 1-Pe':>16s}")
    for r in results:
        print(f"{r['model']:24s} {r['n_divergent']:>4d}/{r['n_agreeing']:<5d} {r['auc_max_p_contradiction']:>10.4f} "
              f"{r['auc_one_minus_p_entailment']:>9.4f} {r['mean_event_auc_contra']:>14.4f} {r['mean_event_auc_not_entail']:>16.4f}"
              f"  ({r['events_with_both']} events)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
