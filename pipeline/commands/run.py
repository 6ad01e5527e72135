"""``divergence run CASE_DIR [--out DIR]`` (CONTRACTS §2)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..config import RunConfig
from ..errors import DivergenceError


def fail(err: Exception, code: int = 2) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        ctx: typer.Context,
        case_dir: Path = typer.Argument(..., help="Case folder with case.toml."),
        out: Path | None = typer.Option(None, "--out", help="Output folder (default reports/<case id>)."),
        claim_threshold: float = typer.Option(RunConfig.claim_threshold, min=0.0, max=1.0, help="Minimum claim-detector score for a sentence to be a claim."),
        top_k: int = typer.Option(RunConfig.top_k, min=1, help="Neighbours per claim in the alignment index."),
        min_similarity: float = typer.Option(RunConfig.min_similarity, help="Minimum combined alignment score for a pair."),
        max_doc_mb: float = typer.Option(RunConfig.max_doc_mb, min=0.001, help="Refuse documents larger than this (MB)."),
        strict: bool = typer.Option(False, "--strict", help="Fail on the first bad document instead of skipping it."),
        allow_root: list[Path] = typer.Option([], "--allow-root", help="A folder outside the case folder that its documents may be read from (repeatable); by default only the case folder is."),
    ) -> None:
        """Analyse one case: write report.json and report.html."""
        from ..manifest import load_manifest
        from ..runner import Models, analyse_case, write_report

        config: RunConfig = (ctx.obj or RunConfig()).with_overrides(
            claim_threshold=claim_threshold, top_k=top_k, min_similarity=min_similarity, max_doc_mb=max_doc_mb)
        try:
            case = load_manifest(case_dir)  # fail fast, before loading models
            out_dir = out or Path("reports") / case.id
            models = Models.cached(config)
            report = analyse_case(case_dir, config=config, models=models, strict=strict,
                                  allowed_roots=tuple(p.resolve() for p in allow_root))
            path = write_report(report, out_dir)
        except DivergenceError as err:
            fail(err)
            return
        except OSError as err:  # the output folder is not writable, is a file, or the disk is full
            fail(f"{err.filename or out}: cannot write the report: {err.strerror or err}")
            return
        for warning in report["warnings"]:
            typer.echo(f"warning: {warning}", err=True)
        for skipped in report["skipped"]:
            typer.echo(f"error: {skipped['error']}", err=True)
        s = report["summary"]
        by_type = ", ".join(f"{k} {v}" for k, v in s["by_type"].items() if v)
        typer.echo(f"{path}: {s['documents']} documents, {s['claims']} claims, {s['divergences']} flags ({by_type})")
        if report["skipped"]:
            raise typer.Exit(3)
        sys.stdout.flush()
