"""Throughput, memory and incremental-rerun cost of ``divergence batch``.

Makes N cases from the bundled ``corpora/hanoi-2019`` case, perturbed with a seed so
no two are the same: paragraphs shuffled within a speaker's turn, numbers changed,
names swapped within a side, sentences dropped. It then runs the real command line
(what users run, model loading included) with the local engine at 1 and 2 workers and
with Ray, and reruns with nothing changed. Prints documents/s, words/s, the peak RSS
of the processes that analysed cases (recorded by each worker in ``run.log``), and
checks the issue's targets:

* 2 workers >= 1.6x the throughput of 1 worker;
* a rerun with nothing changed < 5% of the first run's time;
* peak memory per worker < 2 GB on a 1,000-document batch (``--cases 200``).

    python evaluation/bench_batch.py --cases 200            # 1,000 documents
    python evaluation/bench_batch.py --cases 8 --runs local1,local2,ray
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HANOI = REPO / "corpora" / "hanoi-2019"
# names swapped within a side, so a perturbed case stays a coherent two-sided case
SWAPS = [("Pompeo", "Biegun"), ("Choe Son Hui", "Kim Yong Chol"), ("Yongbyon", "Sohae"), ("Hanoi", "Da Nang")]
_LABEL = re.compile(r"^(?:[A-Z][A-Z .'\-]+:|Q\b)")
_NUMBER = re.compile(r"\b\d+\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def perturb(text: str, rng: random.Random, *, drop: float = 0.1) -> str:
    paragraphs = text.split("\n\n")
    turns: list[list[str]] = []
    for para in paragraphs:
        if not turns or _LABEL.match(para):
            turns.append([para])
        else:
            turns[-1].append(para)
    out = []
    for turn in turns:
        head, rest = turn[0], turn[1:]
        rng.shuffle(rest)
        for para in [head, *rest]:
            if _LABEL.match(para) or para.startswith("("):
                out.append(para)
                continue
            sentences = _SENTENCE_END.split(para)
            kept = [s for s in sentences if len(sentences) == 1 or rng.random() >= drop]
            out.append(" ".join(kept or sentences[:1]))
    result = "\n\n".join(out)
    result = _NUMBER.sub(lambda m: str(int(m.group()) + rng.choice((0, 0, 1, 2, 5))), result)
    for a, b in SWAPS:
        if rng.random() < 0.5:
            result = re.sub(rf"\b({re.escape(a)}|{re.escape(b)})\b", lambda m: b if m.group() == a else a, result)
    return result


def make_cases(root: Path, n: int, *, seed: int) -> tuple[int, int]:
    """``n`` perturbed copies of the Hanoi case under ``root``; returns (documents, words)."""
    manifest = (HANOI / "case.toml").read_text(encoding="utf-8")
    docs = sorted(HANOI.glob("*.txt"))
    words = 0
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        case = root / f"case-{i:04d}"
        case.mkdir(parents=True)
        (case / "case.toml").write_text(re.sub(r'^id = "hanoi-2019"', f'id = "hanoi-2019-b{i:04d}"', manifest, flags=re.M),
                                        encoding="utf-8")
        for doc in docs:
            text = perturb(doc.read_text(encoding="utf-8"), rng)
            (case / doc.name).write_text(text, encoding="utf-8")
            words += len(text.split())
    return n * len(docs), words


@dataclass
class Run:
    name: str
    engine: str
    workers: int
    cases: int
    documents: int
    words: int
    analysed: int
    skipped: int
    failed: int
    wall_s: float
    first_result_s: float | None  # model loading and worker start-up, roughly
    peak_worker_rss_mb: float | None

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.wall_s

    @property
    def words_per_s(self) -> float:
        return self.words / self.wall_s

    @property
    def steady_docs_per_s(self) -> float | None:
        """Documents/s after the first case finished: start-up left out, for batches too small to amortise it."""
        if not self.first_result_s or self.analysed < 2 or self.wall_s <= self.first_result_s:
            return None
        return self.documents * (self.analysed - 1) / self.analysed / (self.wall_s - self.first_result_s)


def run_cli(name: str, cases: Path, out: Path, *, engine: str, workers: int, global_args: list[str]) -> Run:
    log = out / "run.log"
    seen = len(log.read_text().splitlines()) if log.is_file() else 0
    command = [sys.executable, "-m", "pipeline.cli", *global_args, "batch", str(cases), "--out", str(out),
               "--engine", engine, "--workers", str(workers)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = None
    while proc.poll() is None:
        if first is None and log.is_file() and len(log.read_text().splitlines()) > seen:
            first = time.perf_counter() - start
        time.sleep(0.1)
    wall = time.perf_counter() - start
    output = proc.stdout.read() if proc.stdout else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{name}: divergence batch exited {proc.returncode}:\n{output[-3000:]}")
    entries = [json.loads(line) for line in log.read_text().splitlines()[seen:]]
    rss = [e["worker_rss_mb"] for e in entries if e.get("worker_rss_mb")]
    return Run(name=name, engine=engine, workers=workers, cases=len(entries),
               documents=sum(e["documents"] for e in entries if e["status"] == "ok"),
               words=sum(e["words"] for e in entries if e["status"] == "ok"),
               analysed=sum(e["status"] == "ok" for e in entries), skipped=sum(e["status"] == "skipped" for e in entries),
               failed=sum(e["status"] == "failed" for e in entries), wall_s=wall, first_result_s=first,
               peak_worker_rss_mb=max(rss) if rss else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200, help="perturbed copies of the 5-document Hanoi case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="local1,local2,ray", help="comma list of local1, local2, ray")
    parser.add_argument("--classifier", default="default", help="--classifier passed to divergence (default: the promoted model, if any)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the cases and outputs (default: a temp folder, removed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    cases = work / "cases"
    if cases.exists():
        shutil.rmtree(cases)
    documents, words = make_cases(cases, args.cases, seed=args.seed)
    print(f"{args.cases} cases, {documents} documents, {words} words (seed {args.seed}) in {cases}; "
          f"{os.cpu_count()} CPUs", flush=True)
    global_args = ["--classifier", args.classifier]

    runs: list[Run] = []
    plan = {"local1": ("local", 1), "local2": ("local", 2), "ray": ("ray", 2)}
    for name in args.runs.split(","):
        engine, workers = plan[name.strip()]
        out = work / f"out-{name}"
        if out.exists():
            shutil.rmtree(out)
        runs.append(run_cli(name, cases, out, engine=engine, workers=workers, global_args=global_args))
        print(f"  {name}: {runs[-1].wall_s:.1f}s", flush=True)
    base = runs[-1]
    rerun = run_cli(f"{base.name} rerun", cases, work / f"out-{base.name}", engine=base.engine, workers=base.workers,
                    global_args=global_args)

    print(f"\n{'run':<14}{'cases':>6}{'docs':>6}{'wall s':>9}{'1st case s':>11}{'docs/s':>8}{'words/s':>9}"
          f"{'docs/s after 1st':>17}{'peak worker MB':>16}")
    for r in runs + [rerun]:
        startup = f"{r.first_result_s:.1f}" if r.first_result_s else "-"
        steady = f"{r.steady_docs_per_s:.2f}" if r.steady_docs_per_s else "-"
        rss = f"{r.peak_worker_rss_mb:.0f}" if r.peak_worker_rss_mb else "-"
        print(f"{r.name:<14}{r.cases:>6}{r.documents:>6}{r.wall_s:>9.1f}{startup:>11}{r.docs_per_s:>8.2f}"
              f"{r.words_per_s:>9.0f}{steady:>17}{rss:>16}")
    print()
    by_name = {r.name: r for r in runs}
    if "local1" in by_name and "local2" in by_name:
        speedup = by_name["local2"].docs_per_s / by_name["local1"].docs_per_s
        print(f"2 workers vs 1: {speedup:.2f}x throughput (target >= 1.6x) {'PASS' if speedup >= 1.6 else 'MISS'}")
        s1, s2 = by_name["local1"].steady_docs_per_s, by_name["local2"].steady_docs_per_s
        if s1 and s2:
            print(f"  after start-up: {s2 / s1:.2f}x")
    share = rerun.wall_s / base.wall_s
    print(f"rerun with nothing changed: {rerun.wall_s:.1f}s = {share:.1%} of the first {base.name} run "
          f"(target < 5%) {'PASS' if share < 0.05 and rerun.skipped == rerun.cases else 'MISS'}")
    peak = max((r.peak_worker_rss_mb or 0) for r in runs)
    note = "" if documents >= 1000 else f" (measured on {documents} documents; the target is for 1,000: --cases 200)"
    print(f"peak memory per worker: {peak:.0f} MB (target < 2048 MB){note} {'PASS' if peak < 2048 else 'MISS'}")
    if args.json:
        args.json.write_text(json.dumps({"documents": documents, "words": words, "cases": args.cases,
                                         "runs": [asdict(r) | {"docs_per_s": r.docs_per_s, "words_per_s": r.words_per_s,
                                                               "steady_docs_per_s": r.steady_docs_per_s}
                                                  for r in runs + [rerun]]}, indent=1))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
