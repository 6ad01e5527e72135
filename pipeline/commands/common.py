"""How every command ends: the exit statuses of ``errors.ExitStatus`` and one-line errors.

A command runs its work inside ``with failures():``; a ``DivergenceError`` (bad input,
a model or data that cannot be used) or an ``OSError`` (an output that cannot be
written) becomes one ``error: ...`` line on stderr and ``ExitStatus.ERROR``, never a
traceback. Typer's own usage errors (an option out of range) exit with the same status.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer

from ..errors import DivergenceError, ExitStatus


def fail(*problems: object, status: ExitStatus = ExitStatus.ERROR) -> NoReturn:
    """Print each problem as an ``error:`` line and exit with ``status``."""
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(int(status))


def finish(status: ExitStatus) -> None:
    """Exit with ``status`` unless it is ``OK`` (the command then simply returns)."""
    if status != ExitStatus.OK:
        raise typer.Exit(int(status))


@contextmanager
def failures(*, action: str | None = None, path: str | Path | None = None) -> Iterator[None]:
    """Turn the errors a command can meet into one line and ``ExitStatus.ERROR``.

    An ``OSError`` is reported as ``<file>: <action>: <reason>``; ``action`` says what the
    command was doing (``"cannot write the report"``) and ``path`` names the file when the
    error does not.
    """
    try:
        yield
    except DivergenceError as err:
        fail(err)
    except OSError as err:  # an output folder that is not writable, is a file, or a full disk
        where = err.filename or path
        parts = [str(where)] if where else []
        fail(": ".join([*parts, *([action] if action else []), str(err.strerror or err)]))


__all__ = ["ExitStatus", "fail", "failures", "finish"]
