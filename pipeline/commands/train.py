"""``divergence train`` and ``divergence models list|promote|rollback``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import typer

from ..config import DEFAULT_MODELS_DIR
from .common import failures

models_app = typer.Typer(help="List, promote and roll back trained pair-classifier versions.", no_args_is_help=True)


def train_command(
    smoke: bool = typer.Option(False, "--smoke", help="Few hundred pairs, one epoch (~1 min): checks the path works."),
    labels: Optional[Path] = typer.Option(
        None, "--labels", help="User labels (JSONL/CSV/Parquet/datasets folder with premise, hypothesis, type)."
    ),
    base_model: Optional[str] = typer.Option(None, "--base-model", help="Installed package, local folder or HF id."),
    sources: Optional[str] = typer.Option(
        None, "--sources", help="Comma-separated public sources: sick,snli,anli,fnc1,domain (the default) and the news ones mnli,emergent,wice,claimdiff."
    ),
    version: Optional[str] = typer.Option(None, "--version", help="Version name (folder under models/)."),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    lora_r: Optional[int] = typer.Option(None, "--lora-r"),
    lora_alpha: Optional[int] = typer.Option(None, "--lora-alpha"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    max_length: Optional[int] = typer.Option(None, "--max-length"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (default: all cores)."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop training after this many minutes."),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="Skip the frozen-embedding baseline."),
    reversed_sources: Optional[str] = typer.Option(None, "--reversed", help="Comma-separated sources whose training pairs are also added swapped (contradiction kept, entailment -> neutral), e.g. snli."),
    swapped_sources: Optional[str] = typer.Option(None, "--swapped", help="Comma-separated sources whose training contradictions are also added with premise and hypothesis swapped, e.g. fnc1,emergent,claimdiff."),
    promote: str = typer.Option("auto", "--promote", help="auto (only if not worse than the default) | always | never."),
    models_dir: Path = typer.Option(DEFAULT_MODELS_DIR, "--models-dir"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Public datasets (default ../shared/data)."),
    retrain_judge: bool = typer.Option(True, "--judge/--no-judge", help="With --labels, also refit the divergence "
                                       "judge on the gold events plus these labels (gated on leave-one-event-out)."),
    reports: Path = typer.Option(Path("reports"), "--reports", help="Report folders the labels refer to (for the judge)."),
    events: Optional[list[Path]] = typer.Option(None, "--events", help="Gold events for the judge (repeatable; "
                                                "default ../shared/gold and ../shared/real)."),
) -> None:
    """Train the pair classifier (LoRA cross-encoder) and register it; promoted only if not worse.
    With ``--labels`` the divergence judge is refitted on the same labels too (``--no-judge`` to skip)."""
    from ..training.classifier import train
    from ..training.config import TrainConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    overrides = {
        "base_model": base_model,
        "version": version,
        "epochs": epochs,
        "lr": lr,
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "batch_size": batch_size,
        "max_length": max_length,
        "seed": seed,
        "threads": threads,
        "time_budget_min": time_budget,
        "labels": str(labels) if labels else None,
        "data_dir": str(data_dir) if data_dir else None,
        "sources": tuple(s.strip() for s in sources.split(",") if s.strip()) if sources else None,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    overrides.update(promote=promote, models_dir=str(models_dir))
    if no_baseline:
        overrides["baseline"] = False
    if reversed_sources:
        overrides["reversed_sources"] = tuple(s.strip() for s in reversed_sources.split(",") if s.strip())
    if swapped_sources:
        overrides["swapped_sources"] = tuple(s.strip() for s in swapped_sources.split(",") if s.strip())
    config = TrainConfig.smoke_recipe(**overrides) if smoke else TrainConfig(**overrides)
    with failures():
        result = train(config, progress=typer.echo)
    typer.echo(f"version {result.version} -> {result.path}")
    _print_heldout(result.metrics)
    typer.echo(("promoted: " if result.promoted else "not promoted: ") + result.reason)
    if labels and retrain_judge:
        _retrain_judge(labels, reports=reports, events=events, promote=promote, models_dir=models_dir)


def _retrain_judge(labels: Path, *, reports: Path, events: Optional[list[Path]], promote: str,
                   models_dir: Path) -> None:
    """The judge refitted on the gold events and the reviewers' labels, with the (possibly new)
    default classifier's probabilities; promoted by the same leave-one-event-out gate."""
    from ..config import RunConfig
    from .judge import DEFAULT_EVENTS, fit_and_report

    paths = [p for p in (events or DEFAULT_EVENTS) if p.exists()]
    if not paths:
        typer.echo("judge not retrained: no gold events found (../shared/gold, ../shared/real; see --events)", err=True)
        return
    fit_and_report(paths, version=None, config=RunConfig(models_dir=str(models_dir), judge="none"), labels=labels,
                   reports=reports, promote=promote, models_dir=models_dir, work_dir=Path("reports") / "benchmark-cases")


def _print_heldout(metrics: dict) -> None:
    for name, entry in metrics["heldout"].items():
        extra = f" (FNC score {entry['relative']:.3f} of max)" if "relative" in entry else ""
        rounds = " ".join(f"{r} {entry[r]['accuracy']:.3f}" for r in ("R1", "R2", "R3") if r in entry)
        typer.echo(f"  {name:6s} acc {entry['accuracy']:.3f} n={entry['n']}{extra} {rounds}".rstrip())
    for name, entry in metrics.get("baseline_logreg", {}).items():
        typer.echo(f"  baseline {name} acc {entry['accuracy']:.3f}")


@models_app.command("list")
def list_command(
    models_dir: Path = typer.Option(DEFAULT_MODELS_DIR, "--models-dir"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List trained versions; * marks the default."""
    from ..registry import list_versions

    with failures():
        versions = list_versions(models_dir)
    if as_json:
        typer.echo(json.dumps([v.__dict__ for v in versions], indent=2))
        return
    if not versions:
        typer.echo(f"no versions in {models_dir}")
    for v in versions:
        figures = " ".join(f"{k}={val:.3f}" for k, val in v.metrics.items() if isinstance(val, (int, float)))
        typer.echo(f"{'*' if v.is_default else ' '} {v.name:28s} {v.created}  {figures}")


@models_app.command("promote")
def promote_command(
    name: str = typer.Argument(..., help="Version to make the default."),
    models_dir: Path = typer.Option(DEFAULT_MODELS_DIR, "--models-dir"),
) -> None:
    """Make a version the default used by `divergence run`."""
    from ..registry import promote

    with failures():
        info = promote(name, models_dir=models_dir)
    typer.echo(f"default is now {info.name}")


@models_app.command("evaluate")
def evaluate_command(
    name: str = typer.Argument(..., help="Version to re-evaluate ('default' for the default)."),
    models_dir: Path = typer.Option(DEFAULT_MODELS_DIR, "--models-dir"),
) -> None:
    """Re-run a version's held-out evaluation (same splits) and rewrite its metrics and card."""
    from ..training.classifier import evaluate_version

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    with failures():
        metrics = evaluate_version(name, models_dir=models_dir, progress=typer.echo)
    _print_heldout(metrics)


@models_app.command("rollback")
def rollback_command(models_dir: Path = typer.Option(DEFAULT_MODELS_DIR, "--models-dir")) -> None:
    """Re-promote the previous default."""
    from ..registry import rollback

    with failures():
        info = rollback(models_dir=models_dir)
    typer.echo(f"default is now {info.name}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.add_typer(models_app, name="models")
