"""``divergence review`` (the browser review app) and ``divergence labels export|history``."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from pathlib import Path
from typing import Optional

import typer

from ..errors import DivergenceError, Errors, LabelError, ReportError
from ..labels import DB_ENV, EXPORT_FORMATS, LabelStore, default_db_path, printable
from .common import fail, failures

DEFAULT_PORT = 8765
TOKEN_ENV = "DIVERGENCE_REVIEW_TOKEN"

_DB_HELP = f"labels database (SQLite; default ./divergence-labels.sqlite, or ${DB_ENV})"


def register(app: typer.Typer) -> None:
    app.command("review")(review)
    labels = typer.Typer(
        name="labels",
        help="Reviewers' labels: export them for training, show their history.",
        no_args_is_help=True,
    )
    labels.command("export")(export)
    labels.command("history")(history)
    app.add_typer(labels, name="labels")


def review(
    report_dirs: Optional[list[Path]] = typer.Argument(
        None, help="report folders (each holding report.json); default: every folder under ./reports"
    ),
    db: Optional[Path] = typer.Option(None, "--db", envvar=DB_ENV, help=_DB_HELP),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="interface to listen on; anything but loopback requires an access token"
    ),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="port to listen on"),
    token: Optional[str] = typer.Option(
        None,
        "--token",
        envvar=TOKEN_ENV,
        help="access token required on every request (generated and printed when --host is not loopback)",
    ),
    reviewer: Optional[str] = typer.Option(
        None, "--reviewer", help="default reviewer name on labels (the page can change it)"
    ),
) -> None:
    """Review the flags of report folders in the browser; labels go to the labels database."""
    import uvicorn

    from ..review import create_app

    with failures():
        folders = list(report_dirs or [])
        if not folders:
            folders = sorted(p.parent for p in Path("reports").glob("*/report.json"))
            if not folders:
                raise ReportError(Errors.E094, where=Path("reports").resolve())
        if token is not None and not token.strip():
            raise DivergenceError(Errors.E096)
        if token is None and not _is_loopback(host):
            token = secrets.token_urlsafe(24)
        store = LabelStore(db)
        skipped: list[ReportError] = []
        app = create_app(folders, store=store, token=token, reviewer=reviewer, skipped=skipped)
    if len(skipped) == len(folders):  # nothing to serve: each folder's problem, then exit
        fail(*skipped)
    for err in skipped:
        typer.echo(f"warning: skipped {err}", err=True)

    shown = socket.gethostname() if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    typer.echo(f"Reviewing {len(folders) - len(skipped)} report(s); labels go to {store.path.resolve()}")
    typer.echo(f"Open {url}")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def export(
    out: Path = typer.Option(..., "--out", "-o", help="file to write (a folder for --format dataset)"),
    format: str = typer.Option(
        "jsonl", "--format", "-f", help=f"one of: {', '.join(EXPORT_FORMATS)} (dataset = datasets.save_to_disk)"
    ),
    db: Optional[Path] = typer.Option(None, "--db", envvar=DB_ENV, help=_DB_HELP),
    case: Optional[str] = typer.Option(None, "--case", help="only this case's labels"),
) -> None:
    """Export labelled claim pairs for `divergence train --labels`."""
    with failures(action="cannot write the export", path=out):
        store = _existing_store(db)
        path, rows = store.export(out, format=format, case_id=case)
    typer.echo(f"Wrote {rows} labelled pair(s) to {path}")


def history(
    db: Optional[Path] = typer.Option(None, "--db", envvar=DB_ENV, help=_DB_HELP),
    case: Optional[str] = typer.Option(None, "--case", help="only this case"),
    divergence: Optional[str] = typer.Option(None, "--divergence", help="only this flag"),
    limit: int = typer.Option(50, "--limit", help="show the last N changes (0: all)"),
) -> None:
    """Show who changed which label when, before -> after (oldest first, one change a line)."""
    from ..labels import label_text

    with failures():
        store = _existing_store(db)
        entries = store.history(case_id=case, divergence_id=divergence, limit=limit or None)
    if not entries:
        typer.echo("No label changes recorded.")
        return
    for e in entries:
        if e.action == "clear":
            what = f"withdrew {label_text(e.before)}"
        else:
            what = f"{label_text(e.before)} -> {label_text(e.after)}"
        # names and ids come from reviewers and reports: escape what could drive the terminal
        typer.echo(printable(f"{e.time}  {e.reviewer}  {e.case_id}  {e.divergence_id or e.key}  {what}"))


def _existing_store(db: Path | None) -> LabelStore:
    path = db or default_db_path()
    if not path.is_file():
        raise LabelError(Errors.E093, path=path)
    return LabelStore(path)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
