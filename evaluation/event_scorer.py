"""Score the pipeline on a labelled event (CONTRACTS §4).

Builds a case folder from an event gold file (one transcript per document: a speaker
label line, then the statements one paragraph each; ``case.toml`` with side aliases
from the speakers' names), runs the pipeline on it, and scores the report against the
gold divergences and agreements by character overlap (see ``pipeline.scoring.event_score``).
Prints a table of metrics and, per gold item, whether it was found and with which type;
``--out`` writes the same as JSON.

    python evaluation/event_scorer.py ../shared/gold/singapore-2018.json --out runs/singapore.json
    python evaluation/event_scorer.py GOLD --case-dir /tmp/sg --report /tmp/sg/report/report.json

Metrics: ``recall`` (gold divergences found: a report entry of any type covers both
sides' statements, or the asserted statement of an omission), ``recall_flagged`` (found
with a non-agreement type), ``type_accuracy`` (on the found ones, gold types mapped to
ours), ``agreement_recall`` (gold agreements labelled as agreements), and the flagged
report entries that match no gold item, in total and per gold divergence.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
if os.environ.get("DIVERGENCE_ONLINE") != "1":
    for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(_var, "1")

from pipeline.errors import DivergenceError  # noqa: E402
from pipeline.files import atomic_write  # noqa: E402
from pipeline.report import Report  # noqa: E402
from pipeline.scoring.event_score import EventScore, score_report  # noqa: E402
from pipeline.scoring.gold import GoldCase, build_case, load_gold  # noqa: E402


def run_pipeline(case_dir: Path, *, classifier: str | None) -> Report:
    """The report the ``divergence run`` command would write for this case."""
    from pipeline.config import RunConfig
    from pipeline.render import write_report
    from pipeline.runner import Models, analyse_case

    config = RunConfig().with_overrides(classifier=classifier)
    models = Models.load(config)
    report = analyse_case(case_dir, config=config, models=models)
    write_report(report, case_dir / "report")
    return report


def print_score(score: EventScore, *, file=None) -> None:
    file = file or sys.stdout
    m = score.metrics()
    rows = [
        ("gold divergences found (recall)", f"{m['found']}/{m['gold_divergences']}", f"{m['recall']:.2f}"),
        ("  ... flagged as a divergence", f"{m['found_flagged']}/{m['gold_divergences']}", f"{m['recall_flagged']:.2f}"),
        ("type accuracy on found", f"{m['type_correct']}/{m['found']}", f"{m['type_accuracy']:.2f}"),
        ("gold agreements labelled agreement", f"{m['agreements_recalled']}/{m['gold_agreements']}",
         f"{m['agreement_recall']:.2f}"),
        ("flagged entries matching no gold item", f"{m['unmatched_flagged']}/{m['report_flagged']}",
         f"{m['unmatched_per_gold_divergence']:.2f} per gold divergence"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"event {score.event_id}", file=file)
    for name, count, value in rows:
        print(f"  {name:<{w}}  {count:>7}  {value}", file=file)
    if score.unmapped_gold_types:
        print(f"  gold types with no counterpart in ours: {', '.join(score.unmapped_gold_types)}", file=file)
    print("", file=file)
    print(f"  {'gold item':<10} {'gold type':<16} {'found':<6} {'report type':<16} {'score':>5}  topic", file=file)
    for r in score.items:
        found = ("yes" if r.type_correct else "type?") if r.found else "no"
        if r.kind == "agreement" and r.found and not r.type_correct:
            found = "other"
        score_txt = f"{r.report_score:.2f}" if r.report_score is not None else "-"
        print(f"  {r.id:<10} {r.gold_type:<16} {found:<6} {r.report_type or '-':<16} {score_txt:>5}  {r.topic}",
              file=file)


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=1, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gold", type=Path, help="event gold file (CONTRACTS §4)")
    parser.add_argument("--out", type=Path, help="write metrics and per-item results as JSON here")
    parser.add_argument("--case-dir", type=Path,
                        help="where to build the case (default: <tmp>/divergence-eval/<event id>)")
    parser.add_argument("--report", type=Path, help="score this report.json instead of running the pipeline")
    parser.add_argument("--no-aliases", action="store_true", help="write case.toml without [sides] aliases")
    parser.add_argument("--classifier", help="pair classifier to use (RunConfig.classifier; default: the registry's)")
    args = parser.parse_args(argv)

    try:
        event = load_gold(args.gold)
        case_dir = args.case_dir or Path(tempfile.gettempdir()) / "divergence-eval" / event.id
        case = build_case(event, case_dir, with_aliases=not args.no_aliases)
        started = time.perf_counter()
        if args.report:
            report = Report.read(args.report)  # a ReportError names the file
        else:
            report = run_pipeline(case_dir, classifier=args.classifier)
        seconds = time.perf_counter() - started
        score = score_report(event, GoldCase.read(case_dir), report)
    except DivergenceError as err:
        print(str(err), file=sys.stderr)
        return 2
    print_score(score)
    print(f"\ncase folder: {case.root}" + ("" if args.report else f"  (report in {case.root / 'report'}, "
                                                                    f"pipeline {seconds:.1f}s)"))
    if args.out:
        result = score.to_json()
        result["command"] = " ".join(["python", "evaluation/event_scorer.py", *(argv if argv is not None else sys.argv[1:])])
        result["gold"] = str(args.gold)
        result["case_dir"] = str(case.root)
        stored = report.to_dict()
        result["report_models"] = stored.get("models")
        result["report_config"] = stored.get("config")
        write_json(args.out, result)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
