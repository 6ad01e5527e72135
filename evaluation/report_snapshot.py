"""Run ``divergence run`` on the sample case and every gold event; write or compare the reports.

A refactor that claims to change no behaviour proves it here: take a snapshot before, one
after, and compare them byte for byte (report.json and report.html of every case).

    python evaluation/report_snapshot.py --out /tmp/before
    ... change the code ...
    python evaluation/report_snapshot.py --out /tmp/after --compare /tmp/before

Paraphrased gold events are built into case folders under ``--cases`` (kept, so both
snapshots read the same files); real events (CONTRACTS §4b) are case folders already.
Every case goes through the command line in one process, so the models load once.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import sys
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


def case_folders(cases_dir: Path, events: list[Path]) -> list[Path]:
    """The sample case, then every gold event as a case folder (paraphrased ones built once, reused)."""
    from pipeline.scoring.gold import build_case, load_gold
    from pipeline.scoring.real import is_real_event
    from pipeline.training.events import find_events

    folders = [ROOT / "corpora" / "hanoi-2019"]
    for source in find_events(events) if events else []:
        if is_real_event(source):
            folders.append(source)
            continue
        target = cases_dir / source.stem
        if not (target / "case.toml").exists():
            build_case(load_gold(source), target)
        folders.append(target)
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder for <case>/report.{json,html}.")
    parser.add_argument("--compare", type=Path, help="An earlier snapshot to compare with, byte for byte.")
    parser.add_argument("--cases", type=Path, default=Path("reports") / "snapshot-cases",
                        help="Where paraphrased gold events are built as case folders.")
    parser.add_argument("events", nargs="*", type=Path, default=[SHARED / "gold", SHARED / "real"])
    args = parser.parse_args()

    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.errors import ExitStatus

    runner = CliRunner()
    folders = case_folders(args.cases, [e for e in args.events if e.exists()])
    started = time.perf_counter()
    failed = 0
    for folder in folders:
        out = args.out / folder.name
        result = runner.invoke(app, ["run", str(folder), "--out", str(out)])
        line = (result.output.strip().splitlines() or [""])[-1]
        print(f"{folder.name}: exit {result.exit_code}: {line}")
        failed += result.exit_code not in (ExitStatus.OK, ExitStatus.PARTIAL)
    print(f"{len(folders)} cases in {time.perf_counter() - started:.0f}s")
    if args.compare is None:
        return 1 if failed else 0
    differ = []
    for folder in folders:
        for name in ("report.json", "report.html"):
            a, b = args.compare / folder.name / name, args.out / folder.name / name
            if not (a.exists() and b.exists() and filecmp.cmp(a, b, shallow=False)):
                differ.append(f"{folder.name}/{name}")
    print(f"byte-identical: {2 * len(folders) - len(differ)} of {2 * len(folders)} files"
          + ("" if not differ else "; differ: " + ", ".join(differ)))
    return 1 if failed or differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
