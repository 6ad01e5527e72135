"""Real texts as published: speaker labels, gold-quote coverage, omissions, set-aside claims, headlines.

    python evaluation/real_ingest.py [--real ../shared/real] [--before-dir DIR] [--no-run]
        [--fnc1 ../shared/data/fnc1] [--headlines 200] [--seed 12] [--out results.json]

For every event folder under ``--real`` (a case folder with ``gold.json``, CONTRACTS §4b)
it prints, per document:

- ``labels``: speaker labels the ingest stage recognised, against ``in text``: lines that
  open with a label as White House and Kremlin transcripts write them (upper-case words and
  a colon, ``Q`` and a space, or a mixed-case name that opens two or more lines), counted by
  an independent regular expression over the text with its Unicode spaces made plain;
- the turns by role, and the claims that fall inside a question or a moderator's turn
  (must be 0);
- after a full ``divergence run`` of the case (unless ``--no-run``): claims, claims set
  aside as off-topic, omission flags (and the same figure from ``--before-dir/<event>/
  report.json``, a report of an earlier version, when given), gold quotes covered by a claim,
  gold divergences found (CONTRACTS §4b) and the run time.

With ``--fnc1`` it also measures headlines: ``--headlines`` distinct FNC-1 headlines (a
seeded sample), each written as a news article (headline, blank line, its body) and read
as ``format = "article"``; a headline counts when a claim overlaps it.

The texts are read from the shared folder at run time; nothing of them is stored here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.stages.claims import extract_claims  # noqa: E402
from pipeline.config import RunConfig  # noqa: E402
from pipeline.stages.ingest import read_case  # noqa: E402
from pipeline.stages.turns import _alias_set, _find_labels  # noqa: E402
from pipeline.manifest import document_format, load_manifest  # noqa: E402

# An independent count of label lines: upper-case words + colon, or "Q" + space, at a line start.
_UPPER = re.compile(r"^[ \t]*(?:[A-Z][A-Z.'\-]*(?: [A-Z][A-Z.'\-]*){0,5} ?:(?= |$)|Q(?: |:|\.|$))", re.M)
_MIXED = re.compile(r"^[ \t]*([A-Z][a-z]+(?: [A-Z][a-z]+){1,3}):(?= )", re.M)
_SPACES = re.compile(r"[^\S\n]")


def labels_in_text(text: str) -> int:
    plain = _SPACES.sub(" ", text.replace("\u200b", "").replace("\u00ad", ""))
    upper = len(_UPPER.findall(plain))
    mixed = Counter(_MIXED.findall(plain))
    return upper + sum(n for n in mixed.values() if n >= 2)


def _overlaps(claims: list[dict], doc_id: str, start: int, end: int) -> bool:
    return any(c["doc_id"] == doc_id and c["start"] < end and start < c["end"] for c in claims)


def _locate(texts: dict[str, str], ref: dict | None) -> tuple[str, int, int] | None:
    if not ref:
        return None
    text = texts.get(ref["doc"], "")
    at = text.find(ref["quote"])
    return (ref["doc"], at, at + len(ref["quote"])) if at >= 0 else None


def measure_event(folder: Path, *, run: bool, before_dir: Path | None, models) -> dict:
    case = load_manifest(folder)
    documents, errors = read_case(case)
    gold = json.loads((folder / "gold.json").read_text(encoding="utf-8"))
    rows: dict[str, dict] = {}
    aliases = _alias_set(case)
    for doc in documents:
        label_count = len(_find_labels(doc.text, aliases)) if document_format(doc.spec) != "json" else 0
        rows[doc.id] = {"labels": label_count, "in_text": labels_in_text(doc.text),
                        "turns": dict(Counter(t.role for t in doc.turns)),
                        "W002": any("W002" in w for w in doc.warnings)}
    result: dict = {"event": folder.name, "documents": rows, "errors": [str(e) for e in errors]}
    if not run:
        return result
    from pipeline.runner import analyse_case

    started = time.perf_counter()
    report = analyse_case(folder, config=models.config, models=models).to_dict()  # compared with older files
    result["seconds"] = round(time.perf_counter() - started, 1)
    claims = report["claims"]
    texts = {d["id"]: d["text"] for d in report["documents"]}
    turns = {d["id"]: d.get("turns") or [] for d in report["documents"]}
    set_aside = {c["id"] for c in (report.get("set_aside") or {}).get("claims", [])}
    before = None
    if before_dir is not None and (before_dir / folder.name / "report.json").is_file():
        before = json.loads((before_dir / folder.name / "report.json").read_text(encoding="utf-8"))
    for doc_id, row in rows.items():
        mine = [c for c in claims if c["doc_id"] == doc_id]
        row["claims"] = len(mine)
        row["set_aside"] = sum(1 for c in mine if c["id"] in set_aside)
        row["in_questions"] = sum(1 for c in mine for t in turns[doc_id]
                                  if t["role"] in {"question", "stage"} and t["start"] <= c["start"] < t["end"])
        row["omissions"] = sum(1 for d in report["divergences"] if d["type"] == "omission"
                               and d["claims"][0].rsplit(":", 1)[0] == doc_id)
        if before is not None:
            row["claims_before"] = sum(1 for c in before["claims"] if c["doc_id"] == doc_id)
            row["omissions_before"] = sum(1 for d in before["divergences"] if d["type"] == "omission"
                                          and d["claims"][0].rsplit(":", 1)[0] == doc_id)
    quotes = [q for entry in gold.get("divergences", []) + gold.get("agreements", [])
              for q in (_locate(texts, entry.get("a")), _locate(texts, entry.get("b"))) if q]
    result["gold_quotes"] = len(quotes)
    result["gold_quotes_covered"] = sum(1 for q in quotes if _overlaps(claims, *q))
    result["gold_quotes_set_aside"] = sum(1 for q in quotes
                                          if _overlaps([c for c in claims if c["id"] in set_aside], *q))
    result["gold_found"], result["gold_divergences"] = _found(report, gold, texts)
    if before is not None:
        btexts = {d["id"]: d["text"] for d in before["documents"]}
        result["gold_found_before"], _ = _found(before, gold, btexts)
    return result


def _found(report: dict, gold: dict, texts: dict[str, str]) -> tuple[int, int]:
    by_id = {c["id"]: c for c in report["claims"]}
    found = 0
    golds = gold.get("divergences", [])
    for entry in golds:
        a, b = _locate(texts, entry.get("a")), _locate(texts, entry.get("b"))
        if a is None:
            continue
        for div in report["divergences"]:
            if div["type"] == "agreement":
                continue
            cl = [by_id[c] for c in div["claims"] if c in by_id]
            if _overlaps(cl, *a) and (entry.get("b") is None or (b is not None and _overlaps(cl, *b))):
                found += 1
                break
    return found, len(golds)


def measure_headlines(path: Path, *, n: int, seed: int, nlp) -> dict:
    import pandas as pd

    stances = pd.read_csv(path / "train_stances.reconstructed.csv")
    bodies = pd.read_csv(path / "train_bodies.csv").set_index("Body ID")["articleBody"]
    first_body = stances.sort_values("Body ID").groupby("Headline")["Body ID"].first()
    headlines = sorted(first_body.index)
    random.Random(seed).shuffle(headlines)
    sample = headlines[:n]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines = ['id = "fnc1-headlines"']
        for i, headline in enumerate(sample):
            text = headline.strip() + "\n\n" + str(bodies[first_body[headline]]).strip() + "\n"
            (root / f"h{i}.txt").write_text(text, encoding="utf-8")
            lines += ["[[documents]]", f'id = "h{i}"', f'side = "{"A" if i % 2 else "B"}"', f'path = "h{i}.txt"',
                      'format = "article"']
        (root / "case.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        case = load_manifest(root)
        documents, _ = read_case(case)
        started = time.perf_counter()
        claims = extract_claims(case, documents, nlp=nlp, threshold=RunConfig.claim_threshold)
        seconds = time.perf_counter() - started
    covered = {c.doc_id for c in claims if c.start < len(sample[int(c.doc_id[1:])].strip())}
    missed = [sample[i] for i in range(len(sample)) if f"h{i}" not in covered]
    return {"headlines": len(sample), "claimed": len(covered), "share": round(len(covered) / len(sample), 3),
            "seconds": round(seconds, 1), "missed": missed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REPO.parent / "shared" / "real")
    parser.add_argument("--before-dir", type=Path, help="reports of an earlier version: DIR/<event>/report.json")
    parser.add_argument("--no-run", action="store_true", help="labels only; no full run of the cases")
    parser.add_argument("--fnc1", type=Path, help="FNC-1 folder: also measure headlines")
    parser.add_argument("--headlines", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from pipeline.runner import Models

    models = Models.cached(RunConfig())
    results: dict = {"events": []}
    events = [] if args.skip_real else sorted(p for p in args.real.iterdir() if (p / "gold.json").is_file())
    for folder in events:
        res = measure_event(folder, run=not args.no_run, before_dir=args.before_dir, models=models)
        results["events"].append(res)
        print(f"\n== {res['event']}" + (f"  run {res['seconds']} s" if "seconds" in res else ""))
        print(f"{'document':34} {'labels':>6} {'in text':>7} {'W002':>5} {'q-turns':>7} {'claims':>11} "
              f"{'set aside':>9} {'in q/mod':>8} {'omissions':>11}")
        for doc_id, row in res["documents"].items():
            claims = f"{row.get('claims_before', '-')}->{row.get('claims', '-')}" if "claims" in row else "-"
            om = f"{row.get('omissions_before', '-')}->{row.get('omissions', '-')}" if "omissions" in row else "-"
            print(f"{doc_id:34} {row['labels']:>6} {row['in_text']:>7} {str(row['W002']):>5} "
                  f"{row['turns'].get('question', 0):>7} {claims:>11} {row.get('set_aside', '-'):>9} "
                  f"{row.get('in_questions', '-'):>8} {om:>11}")
        if "gold_quotes" in res:
            print(f"gold quotes covered by claims: {res['gold_quotes_covered']}/{res['gold_quotes']} = "
                  f"{res['gold_quotes_covered'] / max(res['gold_quotes'], 1):.3f}  (of them set aside: "
                  f"{res['gold_quotes_set_aside']});  gold divergences found: "
                  f"{res.get('gold_found_before', '-')}->{res['gold_found']} of {res['gold_divergences']}")
    if results["events"] and "gold_quotes" in results["events"][0]:
        q = sum(e["gold_quotes"] for e in results["events"])
        c = sum(e["gold_quotes_covered"] for e in results["events"])
        print(f"\nall events: gold quotes covered {c}/{q} = {c / max(q, 1):.3f}")
    if args.fnc1:
        res = measure_headlines(args.fnc1, n=args.headlines, seed=args.seed, nlp=models.nlp)
        results["headlines"] = res
        print(f"\nFNC-1 headlines that become a claim: {res['claimed']}/{res['headlines']} = {res['share']:.3f} "
              f"(claims stage {res['seconds']} s)")
        for h in res["missed"]:
            print("  missed:", h)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
