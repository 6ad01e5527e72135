"""``divergence batch INPUT --out DIR``: every case under INPUT, incrementally, locally or on Ray."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import RunConfig
from .common import ExitStatus, failures, finish
from .options import AllowRoot, ClaimThreshold, MaxDocMb, MinSimilarity, TopK, run_config


def register(app: typer.Typer) -> None:
    @app.command("batch")
    def batch(
        ctx: typer.Context,
        input_path: Path = typer.Argument(..., metavar="INPUT", help="A folder of case folders, a folder with manifest.csv/manifest.jsonl and loose transcripts, or such a table."),
        out: Path = typer.Option(Path("reports"), "--out", help="Output folder: <case id>/report.{json,html}, summary.parquet, summary.csv, run.log."),
        workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes (local) or actors (Ray); each loads the models once."),
        engine: str = typer.Option("local", "--engine", help="'local' (process pool) or 'ray' (Ray Data; a cluster with --address)."),
        address: str | None = typer.Option(None, "--address", help="Ray cluster address, e.g. ray://head:10001 or auto (default: RAY_ADDRESS, else a local Ray)."),
        threads_per_worker: int | None = typer.Option(None, "--threads-per-worker", min=1, help="Torch threads per worker (default: cores / workers; 1 per Ray actor)."),
        force: bool = typer.Option(False, "--force", help="Recompute every case, even unchanged ones."),
        fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first case that fails."),
        claim_threshold: ClaimThreshold = RunConfig.claim_threshold,
        top_k: TopK = RunConfig.top_k,
        min_similarity: MinSimilarity = RunConfig.min_similarity,
        max_doc_mb: MaxDocMb = RunConfig.max_doc_mb,
        allow_root: AllowRoot = [],
    ) -> None:
        """Analyse many cases; unchanged ones are skipped, a killed batch resumes where it stopped.

        Exit status: 0 when every case is ok or unchanged, 1 when any case failed
        (each is listed with its error), 2 when the batch cannot run at all.
        """
        from ..batch import BatchConfig, ProgressReporter, run_batch

        config = run_config(ctx, claim_threshold=claim_threshold, top_k=top_k, min_similarity=min_similarity,
                            max_doc_mb=max_doc_mb)
        options = BatchConfig(workers=workers, engine=engine.lower(), address=address, force=force,
                              fail_fast=fail_fast, threads_per_worker=threads_per_worker)
        with failures(path=out):
            result = run_batch(input_path, out, config=config, options=options, reporter=ProgressReporter(),
                               allowed_roots=tuple(allow_root))
        ok, skipped, failed = (len(result.by_status(s)) for s in ("ok", "skipped", "failed"))
        typer.echo(f"{out}: {len(result.outcomes)} cases ({ok} analysed, {skipped} unchanged, {failed} failed) "
                   f"in {result.seconds:.1f}s; {result.divergences} flags in {out / 'summary.csv'}")
        for outcome in result.failed:
            typer.echo(f"error: {outcome.error}", err=True)
        if result.stopped_early:
            typer.echo("stopped at the first failure (--fail-fast); rerun to process the rest", err=True)
        finish(ExitStatus.OK if result.ok else ExitStatus.FAILED)
