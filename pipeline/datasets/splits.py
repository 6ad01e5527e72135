"""The hold-out: which rows of each development split are trained on and which are reported.

Only development splits exist in ``../shared/data``, so each is split by a hash into a
part to train on and a part to report on. The trainer (``TrainConfig``) and the
evaluation harness (``EvalConfig``) both take their defaults from here, so a model is
never scored on pairs it was trained on because two copies of a fraction drifted apart.
"""

from __future__ import annotations

import hashlib
from types import MappingProxyType
from typing import Mapping

import numpy as np
from datasets import Dataset

# Share of each public dev set held out for reporting (never trained on).
DEFAULT_HELDOUT_FRACTION: Mapping[str, float] = MappingProxyType(
    {"sick": 0.2, "snli": 0.3, "anli": 0.5, "fnc1": 0.2, "mnli": 0.3, "emergent": 0.3, "wice": 0.3, "claimdiff": 0.3}
)
# A set without an entry above is split in half.
FALLBACK_HELDOUT_FRACTION = 0.5
# Share of the reviewers' own labels held out when retraining on them.
LABELS_HELDOUT_FRACTION = 0.2
DEFAULT_HOLDOUT_SEED = 13


def default_fractions() -> dict[str, float]:
    """A fresh, editable copy of :data:`DEFAULT_HELDOUT_FRACTION` (a dataclass default)."""
    return dict(DEFAULT_HELDOUT_FRACTION)


def _bucket(value: object, *, name: str, seed: int) -> float:
    digest = hashlib.blake2b(f"{seed}\x1f{name}\x1f{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def holdout(
    ds: Dataset,
    *,
    name: str,
    fraction: float = FALLBACK_HELDOUT_FRACTION,
    key: str | None = None,
    seed: int = DEFAULT_HOLDOUT_SEED,
) -> tuple[Dataset, Dataset]:
    """Split a dev set into ``(train_part, heldout_part)`` with about ``fraction`` held out.

    Hash-based, so the split is identical across runs, machines and row orders, and a
    row's side never depends on what else is in the dataset. Rows are grouped by
    ``key``: by default ``body_id`` where present (FNC-1: no body on both sides,
    as in the Cisco hold-out), else ``claim_id`` (Emergent, WiCE: no claim on both
    sides), else ``topic`` (ClaimDiff), else ``premise`` (SNLI/ANLI/SICK reuse a premise for
    several hypotheses; splitting them would leak the premise into training).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    key = key or next((k for k in ("body_id", "claim_id", "topic") if k in ds.column_names), "premise")
    if key not in ds.column_names:
        raise ValueError(f"holdout key {key!r} is not a column of {name!r}: {ds.column_names}")
    held = np.fromiter((_bucket(v, name=name, seed=seed) < fraction for v in ds[key]), dtype=bool, count=len(ds))
    return ds.select(np.flatnonzero(~held)), ds.select(np.flatnonzero(held))

