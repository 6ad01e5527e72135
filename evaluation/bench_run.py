"""Speed of a whole ``divergence run`` against its model passes, and its scaling (issue #4).

    python evaluation/bench_run.py [--case corpora/hanoi-2019] [--scale 8] [--classifier default]

1. Times ``analyse_case`` on the case, then times the bare model passes on the same
   input: spaCy ``nlp.pipe`` over the paragraphs, the encoder over the claims, the pair
   classifier over the aligned pairs (both directions, as the stage runs it).
   Goal: total <= 1.5 x the sum of the model passes.
2. Builds the case repeated ``--scale`` times (documents copied under new ids, every
   sentence kept) and times it. Goal: x8 takes <= 12 x the time of x1.
Models are loaded once, before any timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.config import RunConfig  # noqa: E402
from pipeline.stages.ingest import paragraphs, read_case  # noqa: E402
from pipeline.manifest import load_manifest  # noqa: E402
from pipeline.runner import Models, analyse_case  # noqa: E402


def scaled_case(case_dir: Path, scale: int, into: Path) -> Path:
    """The case with every document repeated ``scale`` times under new ids."""
    manifest = tomllib.loads((case_dir / "case.toml").read_text())
    lines = [f'id = "{manifest["id"]}-x{scale}"']
    for i in range(scale):
        for doc in manifest["documents"]:
            name = f"{i}-{doc['path']}"
            shutil.copy(case_dir / doc["path"], into / name)
            lines += ["[[documents]]", f'id = "{doc["id"]}-{i}"', f'side = "{doc["side"]}"', f'path = "{name}"']
            if doc.get("speaker"):
                lines.append(f'speaker = "{doc["speaker"]}"')
    for side, spec in manifest.get("sides", {}).items():
        lines += [f"[sides.{side}]", "aliases = [" + ", ".join(f'"{a}"' for a in spec.get("aliases", [])) + "]"]
    (into / "case.toml").write_text("\n".join(lines) + "\n")
    return into


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, default=REPO / "corpora" / "hanoi-2019")
    parser.add_argument("--scale", type=int, default=8)
    parser.add_argument("--classifier", default="default")
    args = parser.parse_args()
    config = RunConfig(classifier=args.classifier)
    models = Models.load(config)
    analyse_case(args.case, config=config, models=models)  # warm-up

    report, total = timed(lambda: analyse_case(args.case, config=config, models=models))
    case = load_manifest(args.case)
    documents, _ = read_case(case)
    texts = [d.text[s:e] for d in documents for s, e, _ in paragraphs(d.text, d.turns)]
    _, t_spacy = timed(lambda: list(models.nlp.pipe(texts, batch_size=config.batch_size)))
    claim_texts = [c.text for c in report.claims]
    vectors, t_encoder = timed(lambda: models.encoder.encode(claim_texts, batch_size=config.batch_size))
    # the pairs the classifier really sees: the aligned pairs, both directions
    from pipeline.stages.align import AlignConfig, align_claims
    from pipeline.stages.claims import extract_claims

    claim_objs = extract_claims(case, documents, nlp=models.nlp, threshold=config.claim_threshold)
    alignment = align_claims(claim_objs, vectors, parties=case.parties,
                             config=AlignConfig(top_k=config.top_k, min_similarity=config.min_similarity))
    texts = {c.id: c.text for c in claim_objs}
    pairs = [(texts[p.a], texts[p.b]) for p in alignment.pairs]
    pairs = pairs + [(b, a) for a, b in pairs]
    n_pairs = len(alignment.pairs)
    claims = texts
    t_classifier = 0.0
    if models.scorer is not None and pairs:
        _, t_classifier = timed(lambda: models.scorer.predict_proba(pairs, batch_size=config.batch_size))
    passes = t_spacy + t_encoder + t_classifier
    print(f"case {report.case.id}: {len(report.documents)} documents, {len(claims)} claims, "
          f"{n_pairs} aligned pairs, classifier {models.versions()['classifier']}")
    print(f"  model passes: spaCy {t_spacy:.2f} s + encoder {t_encoder:.2f} s + classifier {t_classifier:.2f} s "
          f"= {passes:.2f} s")
    print(f"  whole run: {total:.2f} s  ->  {total / passes:.2f} x the model passes (goal <= 1.50)")
    print(f"  stage timings: {report.timings}")

    with tempfile.TemporaryDirectory() as tmp:
        big = scaled_case(args.case, args.scale, Path(tmp))
        big_report, t_big = timed(lambda: analyse_case(big, config=config, models=models))
    print(f"x{args.scale}: {len(big_report.claims)} claims in {t_big:.2f} s  ->  {t_big / total:.2f} x the time "
          f"of x1 (goal <= {1.5 * args.scale:.0f})")


if __name__ == "__main__":
    main()
