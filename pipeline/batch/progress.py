"""Progress of a batch on the terminal: a tqdm bar there, one plain line per case elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any

from .config import CaseOutcome


class ProgressReporter:
    """A tqdm bar (rate, ETA) on a terminal; one plain line per case otherwise (CI logs, files)."""

    def __init__(self, *, stream: IO[str] | None = None, bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bar_enabled = self.stream.isatty() if bar is None else bar
        self.bar: Any = None
        self.total = 0
        self.done = 0

    def start(self, total: int, prechecked: Sequence[CaseOutcome]) -> None:
        self.total, self.done = total, len(prechecked)
        skipped = sum(o.status == "skipped" for o in prechecked)
        for outcome in prechecked:
            if outcome.status == "failed":
                self._echo(f"failed {outcome.case_id}: {outcome.error}")
        self._echo(f"{total} cases: {skipped} unchanged (skipped), {total - len(prechecked)} to analyse")
        if self.bar_enabled and self.done < total:
            from tqdm.auto import tqdm

            # the bar starts at the prechecked count so its rate and ETA reflect analysed cases only
            self.bar = tqdm(total=total, initial=self.done, unit="case", file=self.stream, dynamic_ncols=True)

    def update(self, outcome: CaseOutcome) -> None:
        self.done += 1
        if self.bar is not None:
            if outcome.status == "failed":
                self.bar.write(f"failed {outcome.case_id}: {outcome.error}", file=self.stream)
            self.bar.update(1)
        else:
            tail = f": {outcome.error}" if outcome.error else ""
            self._echo(f"[{self.done}/{self.total}] {outcome.case_id} {outcome.status} {outcome.seconds:.1f}s{tail}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _echo(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
