"""``divergence run CASE_DIR [--out DIR]`` (CONTRACTS §2)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..config import RunConfig
from .common import ExitStatus, failures, finish
from .options import AllowRoot, ClaimThreshold, MaxDocMb, MinSimilarity, Strict, TopK, run_config


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        ctx: typer.Context,
        case_dir: Path = typer.Argument(..., help="Case folder with case.toml."),
        out: Path | None = typer.Option(None, "--out", help="Output folder (default reports/<case id>)."),
        claim_threshold: ClaimThreshold = RunConfig.claim_threshold,
        top_k: TopK = RunConfig.top_k,
        min_similarity: MinSimilarity = RunConfig.min_similarity,
        max_doc_mb: MaxDocMb = RunConfig.max_doc_mb,
        strict: Strict = False,
        allow_root: AllowRoot = [],
    ) -> None:
        """Analyse one case: write report.json and report.html."""
        from ..manifest import load_manifest
        from ..render import write_report
        from ..runner import Models, analyse_case

        config = run_config(ctx, claim_threshold=claim_threshold, top_k=top_k, min_similarity=min_similarity,
                            max_doc_mb=max_doc_mb)
        with failures():
            case = load_manifest(case_dir)  # fail fast, before loading models
            models = Models.cached(config)
            report = analyse_case(case_dir, config=config, models=models, strict=strict,
                                  allowed_roots=tuple(p.resolve() for p in allow_root))
        out_dir = out or Path("reports") / case.id
        with failures(action="cannot write the report", path=out_dir):
            path = write_report(report, out_dir)
        for warning in report.warnings:
            typer.echo(f"warning: {warning}", err=True)
        for skipped in report.skipped:
            typer.echo(f"error: {skipped.error}", err=True)
        s = report.summary
        by_type = ", ".join(f"{k} {v}" for k, v in s.by_type.items() if v)
        typer.echo(f"{path}: {s.documents} documents, {s.claims} claims, {s.divergences} flags ({by_type})")
        sys.stdout.flush()
        finish(ExitStatus.PARTIAL if report.skipped else ExitStatus.OK)
