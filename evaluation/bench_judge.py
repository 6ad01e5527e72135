"""Time a whole run of a case with this checkout and, beside it, with another checkout
(for example the commit before the judge existed), in one benchmark run.

    git worktree add /tmp/divergence-before 7538aef
    python evaluation/bench_judge.py --baseline /tmp/divergence-before [--case corpora/hanoi-2019] [--repeats 3]

Each checkout runs in its own process with its own ``models/`` (same venv, same
threads): models are loaded and one warm-up run made before the timed runs; the
median of ``--repeats`` runs of ``analyse_case`` is printed, with the stage timings of
the last run, and the ratio of this checkout to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_PROGRAM = """
import json, os, statistics, sys, time
sys.path.insert(0, os.environ["BENCH_REPO"])
import warnings; warnings.filterwarnings("ignore")
from pipeline.config import RunConfig
from pipeline.runner import Models, analyse_case
config = RunConfig()
t = time.perf_counter(); models = Models.load(config); load = time.perf_counter() - t
report = analyse_case(sys.argv[1], config=config, models=models)
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); report = analyse_case(sys.argv[1], config=config, models=models)
    times.append(time.perf_counter() - t)
if hasattr(report, "to_dict"):  # a Report (pipeline.report); older checkouts return a dict
    report = {**report.to_dict(), "timings": report.timings}
print(json.dumps({"load": load, "median": statistics.median(times), "runs": times, "timings": report.get("timings"),
                  "claims": len(report["claims"]), "flags": len(report["divergences"]),
                  "pairs": report["summary"]["aligned_pairs"], "models": report.get("models")}))
"""


def measure(repo: Path, case: Path, repeats: int) -> dict:
    env = {**os.environ, "BENCH_REPO": str(repo), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-c", _PROGRAM, str(case.resolve()), str(repeats)], cwd=repo, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of the project")
    parser.add_argument("--case", type=Path, default=REPO / "corpora" / "hanoi-2019")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = {}
    for name, repo in (("baseline", args.baseline.resolve()), ("this checkout", REPO)):
        rows[name] = measure(repo, args.case, args.repeats)
        r = rows[name]
        print(f"{name:<14} {r['median']:.2f} s median of {args.repeats} (load {r['load']:.1f} s; {r['claims']} claims, "
              f"{r['pairs']} pairs, {r['flags']} flags; models {r['models']})")
        print(f"{'':<14} stages: " + ", ".join(f"{k} {v:.2f}" for k, v in (r["timings"] or {}).items()))
    ratio = rows["this checkout"]["median"] / rows["baseline"]["median"]
    print(f"ratio {ratio:.2f}x (goal <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
