"""The figures the project commits to, and the results document ``divergence evaluate`` writes.

:func:`check_targets` compares the harness's result rows (one per task, split, system
and metric) with :data:`TARGETS`; :func:`write_results` stores rows, effective config
and target checks as one JSON file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import Errors, EvaluationError
from ..files import atomic_write
from .baselines import SYSTEM_FROZEN

RESULTS_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Target:
    """A figure the project commits to, checked on the model's rows.

    With ``versus`` the requirement is a margin over that system on the same
    split; ``strict`` means "above", not "at least"."""

    name: str
    task: str
    metric: str
    required: float
    versus: str | None = None
    strict: bool = False
    splits: str = "all"  # "all": every split of the task; "rounds": ANLI rounds (not the pooled row)


TARGETS: tuple[Target, ...] = (
    Target("SICK accuracy >= 0.85", "sick", "accuracy", 0.85),
    Target("SNLI accuracy >= 0.80", "snli", "accuracy", 0.80),
    Target("ANLI accuracy above chance (1/3) per round", "anli", "accuracy", 1 / 3, strict=True, splits="rounds"),
    Target("FNC-1 score >= 0.80 of max", "fnc1", "fnc_score_rel", 0.80),
    Target("SICK: model - frozen-embedding LR >= 10 points", "sick", "accuracy", 0.10, versus=SYSTEM_FROZEN),
    Target("SNLI: model - frozen-embedding LR >= 10 points", "snli", "accuracy", 0.10, versus=SYSTEM_FROZEN),
)


def check_targets(results: pd.DataFrame, targets: Sequence[Target] = TARGETS) -> pd.DataFrame:
    """One row per (target, split) that ``results`` has the figures for:
    ``target, split, system, measured, required, met``."""
    out = []
    models = results[results["system"].astype(str).str.startswith("model:")]
    for target in targets:
        mine = models[(models["task"] == target.task) & (models["metric"] == target.metric)]
        if target.splits == "rounds":
            mine = mine[~mine["split"].str.startswith("all/")]
        for row in mine.itertuples():
            measured = float(row.value)
            if target.versus is not None:
                other = results[
                    (results["task"] == target.task)
                    & (results["split"] == row.split)
                    & (results["system"] == target.versus)
                    & (results["metric"] == target.metric)
                ]
                if other.empty:
                    continue
                measured -= float(other["value"].iloc[0])
            met = measured > target.required if target.strict else measured >= target.required
            out.append(
                {
                    "target": target.name,
                    "split": row.split,
                    "system": row.system,
                    "measured": measured,
                    "required": target.required,
                    "met": bool(met),
                }
            )
    return pd.DataFrame(out, columns=["target", "split", "system", "measured", "required", "met"])


def results_to_json(results: pd.DataFrame) -> dict[str, object]:
    """The JSON document ``divergence evaluate`` writes: the effective config, the
    model, every result row and the target checks."""
    clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": results.attrs.get("config"),
        "model": results.attrs.get("model"),
        "encoder": results.attrs.get("encoder"),
        "results": [{k: clean(v) for k, v in row.items()} for row in results.to_dict(orient="records")],
        "targets": check_targets(results).to_dict(orient="records"),
    }


def write_results(results: pd.DataFrame, path: str | Path) -> Path:
    """Write the results JSON atomically (temp file in the same folder, then rename),
    so a reader never sees half a file and a crash keeps the previous one."""
    path = Path(path)
    payload = json.dumps(results_to_json(results), indent=2, default=_json_default, allow_nan=False)
    try:
        atomic_write(path, payload + "\n")
    except OSError as err:
        raise EvaluationError(Errors.E072, path=path, detail=err.strerror or str(err)) from err
    return path


def _json_default(value: object) -> object:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")

