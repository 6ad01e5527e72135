"""The analysis options ``divergence run`` and ``divergence batch`` share: one definition each,
with one range check each, so a value one command refuses the other refuses too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config import RunConfig

ClaimThreshold = Annotated[float, typer.Option(
    "--claim-threshold", min=0.0, max=1.0, help="Minimum claim-detector score for a sentence to be a claim.")]
TopK = Annotated[int, typer.Option("--top-k", min=1, help="Neighbours per claim in the alignment index.")]
MinSimilarity = Annotated[float, typer.Option(
    "--min-similarity", help="Minimum combined alignment score for a pair.")]
MaxDocMb = Annotated[float, typer.Option("--max-doc-mb", min=0.001, help="Refuse documents larger than this (MB).")]
AllowRoot = Annotated[list[Path], typer.Option(
    "--allow-root", help="A folder outside the case folder(s) that documents may be read from (repeatable); by "
    "default only each case's own folder is (and, for batch, the folder of a manifest table).")]
Strict = Annotated[bool, typer.Option("--strict", help="Fail on the first bad document instead of skipping it.")]


def run_config(ctx: typer.Context, *, claim_threshold: float, top_k: int, min_similarity: float,
               max_doc_mb: float) -> RunConfig:
    """The global model choices (``divergence [OPTIONS] COMMAND``) with the shared analysis options."""
    return (ctx.obj or RunConfig()).with_overrides(claim_threshold=claim_threshold, top_k=top_k,
                                                  min_similarity=min_similarity, max_doc_mb=max_doc_mb)


__all__ = ["AllowRoot", "ClaimThreshold", "MaxDocMb", "MinSimilarity", "Strict", "TopK", "run_config"]
