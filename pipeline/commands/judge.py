"""``divergence benchmark`` and ``divergence train-judge``: the divergence judge on gold events."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from ..config import DEFAULT_MODELS_DIR, PROJECT_ROOT, RunConfig
from .common import fail, failures

DEFAULT_EVENTS = [PROJECT_ROOT.parent / "shared" / "gold", PROJECT_ROOT.parent / "shared" / "real"]


class Mode(str, Enum):
    loeo = "loeo"
    fixed = "fixed"
    rules = "rules"


class Promote(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


def register(app: typer.Typer) -> None:
    app.command("benchmark")(benchmark_command)
    app.command("train-judge")(train_judge_command)


def benchmark_command(
    ctx: typer.Context,
    events: list[Path] = typer.Argument(None, help="Gold files, real-event folders, or folders of them "
                                        "(default: ../shared/gold ../shared/real)."),
    mode: Mode = typer.Option(Mode.loeo, "--mode", help="loeo: each event judged by a judge fitted on the other "
                              "events; fixed: the judge chosen with the global --judge; rules: the hand rules."),
    out: Path = typer.Option(Path("reports") / "benchmark.json", "--out", help="The table as JSON."),
    work_dir: Path = typer.Option(Path("reports") / "benchmark-cases", "--work-dir",
                                  help="Where the paraphrased events' case folders are written."),
) -> None:
    """Run and score every gold event; print the per-event table and the macro means."""
    from ..runner import Models
    from ..training.benchmark import benchmark, format_table

    config: RunConfig = ctx.obj or RunConfig()
    with failures():
        paths = events or DEFAULT_EVENTS
        models = Models.load(config if mode == Mode.fixed else config.with_overrides(judge="none"))
        if mode == Mode.fixed and models.judge is None:
            fail(f"{config.models_dir}: no judge {config.judge!r} to run (see divergence train-judge)")
        result = benchmark(paths, mode=mode.value, config=config, models=models, work_dir=work_dir,
                           progress=lambda line: typer.echo(line, err=True))
        typer.echo(format_table(result))
        from ..files import atomic_write

        atomic_write(out, json.dumps(result, indent=1, ensure_ascii=False))
    typer.echo(f"wrote {out}")


def train_judge_command(
    ctx: typer.Context,
    events: list[Path] = typer.Argument(None, help="Gold events to fit on (default: ../shared/gold ../shared/real)."),
    version: str = typer.Option(None, "--version", help="Judge version name (default judge-<date>)."),
    labels: Path = typer.Option(None, "--labels", help="Reviewers' labels exported from the review app "
                                "(csv/jsonl/parquet), added to the gold pairs."),
    reports: Path = typer.Option(Path("reports"), "--reports", help="Report folders the labels refer to."),
    promote: Promote = typer.Option(Promote.auto, "--promote", help="auto: only if its leave-one-event-out "
                                    "figures are not worse than the default judge's."),
    models_dir: Path = typer.Option(DEFAULT_MODELS_DIR, "--models-dir"),
    work_dir: Path = typer.Option(Path("reports") / "benchmark-cases", "--work-dir"),
) -> None:
    """Fit the divergence judge on every gold event (and reviewers' labels), gated on leave-one-event-out."""
    config: RunConfig = (ctx.obj or RunConfig()).with_overrides(judge="none", models_dir=str(models_dir))
    fit_and_report(events or DEFAULT_EVENTS, version=version, config=config, labels=labels, reports=reports,
                   promote=promote.value, models_dir=models_dir, work_dir=work_dir)


def fit_and_report(events: list[Path], *, version: str | None, config: RunConfig, labels: Path | None,
                   reports: Path, promote: str, models_dir: Path, work_dir: Path) -> None:
    """Fit, measure, register and print (``train-judge`` and ``train --labels``)."""
    from ..runner import Models
    from ..training.benchmark import format_table
    from ..training.judge import train_judge

    with failures():
        models = Models.load(config)
        result = train_judge(events, version=version, config=config, models=models, work_dir=work_dir,
                             labels=labels, reports=reports, promote=promote, models_dir=models_dir,
                             progress=lambda line: typer.echo(line, err=True))
    typer.echo(format_table(result["loeo"]))
    typer.echo(f"{result['path']}: judge {result['version']} "
               f"({'promoted to default' if result['promoted'] else 'registered, not promoted'}: {result['reason']})")
