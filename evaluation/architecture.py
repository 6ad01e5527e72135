"""Figures of the package's shape: module and function sizes, what a run imports, import time.

    python evaluation/architecture.py                 # sizes and the import time of pipeline.runner
    python evaluation/architecture.py --run-imports   # also runs `divergence run` on the sample case
                                                      # and lists the pipeline modules it imported

The rooms a run must never enter (training, datasets, scoring, review, batch) are ``OUTSIDE_RUN``;
``--run-imports`` exits 1 if a run imported one of them.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipeline"
OUTSIDE_RUN = ("pipeline.training", "pipeline.scoring", "pipeline.datasets", "pipeline.review", "pipeline.batch")

_RUN_AND_LIST = """
import json, sys
from pipeline.cli import app
try:
    app(["run", sys.argv[1], "--out", sys.argv[2]])
except SystemExit as stop:
    code = stop.code
print(json.dumps({"exit": code, "modules": sorted(m for m in sys.modules if m == "pipeline" or m.startswith("pipeline."))}))
"""


def sizes(module_limit: int, function_limit: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    modules, functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        lines = source.count("\n")
        if lines > module_limit:
            modules.append((name, lines))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > function_limit:
                    functions.append((f"{name}:{node.lineno} {node.name}", length))
    return modules, functions


def import_seconds(module: str, repeats: int = 3) -> float:
    """Best of ``repeats`` fresh interpreters importing ``module`` (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", f"import time; t = time.perf_counter(); import {module}; "
                              "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True,
                             cwd=ROOT, env=_env())
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def run_imports(case: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", _RUN_AND_LIST, str(case), out], capture_output=True,
                              text=True, check=True, cwd=ROOT, env=_env())
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.setdefault(var, "1")
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module-limit", type=int, default=600)
    parser.add_argument("--function-limit", type=int, default=120)
    parser.add_argument("--run-imports", action="store_true")
    parser.add_argument("--case", type=Path, default=ROOT / "corpora" / "hanoi-2019")
    args = parser.parse_args()

    modules, functions = sizes(args.module_limit, args.function_limit)
    count = len(list(PACKAGE.rglob("*.py")))
    print(f"modules in pipeline/: {count}; over {args.module_limit} lines: {len(modules)}")
    for name, lines in modules:
        print(f"  {name}: {lines}")
    print(f"functions over {args.function_limit} lines: {len(functions)}")
    for name, lines in functions:
        print(f"  {name}: {lines}")
    for module in ("pipeline.cli", "pipeline.runner"):
        print(f"import {module}: {import_seconds(module):.2f}s (best of 3)")
    if not args.run_imports:
        return 0
    result = run_imports(args.case)
    names = result["modules"]
    outside = [m for m in names if m.startswith(OUTSIDE_RUN)]
    print(f"divergence run {args.case.name}: exit {result['exit']}, {len(names)} pipeline modules imported")
    print("  " + " ".join(names))
    print(f"  of the rooms a run must not use ({', '.join(OUTSIDE_RUN)}): {outside or 'none'}")
    return 1 if outside else 0


if __name__ == "__main__":
    raise SystemExit(main())
