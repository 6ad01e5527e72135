"""Whether a newly trained pair classifier becomes the default.

A candidate is promoted when it is not worse than the current default on every
held-out set both were scored on, the same sets scored by the same code
(:func:`default_metrics` re-scores the default on the candidate's held-out data).
``--promote always`` / ``never`` override the rule.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from datasets import Dataset

from .. import registry
from ..errors import ModelError
from ..scoring.classifier import evaluate, headline_metrics

logger = logging.getLogger(__name__)

def compare_with_default(
    candidate: Mapping[str, float],
    current: Mapping[str, float] | None,
    *,
    tolerance: float,
    strict_keys: Sequence[str] = ("labels",),
) -> tuple[bool, str]:
    """Promote when not worse than the current default on every shared held-out set.

    Public figures may drop by ``tolerance`` (run-to-run noise); the user's own
    held-out labels may not drop at all - they are why the user retrained.
    """
    if current is None:
        return True, "no default version yet"
    worse = []
    for key in sorted(set(candidate) & set(current)):
        allowed = 0.0 if key in strict_keys else tolerance
        if candidate[key] < current[key] - allowed - 1e-9:
            worse.append(f"{key} {candidate[key]:.3f} < default {current[key]:.3f}")
    if worse:
        return False, "worse than the default on " + "; ".join(worse)
    return True, "not worse than the default on " + ", ".join(sorted(set(candidate) & set(current)))


def decide_promotion(mode: str, candidate: Mapping[str, float], current: Mapping[str, float] | None, *,
                     tolerance: float) -> tuple[bool, str]:
    """(promoted, reason) for ``--promote mode``: ``always``, ``never``, or ``auto``
    (:func:`compare_with_default` on the headline figures)."""
    if mode == "never":
        return False, "--promote never"
    if mode == "always":
        return True, "--promote always"
    return compare_with_default(candidate, current, tolerance=tolerance)


def default_metrics(models_dir: Path, heldout: Mapping[str, Dataset], extras: Mapping[str, Any], *,
                    progress: Callable[[str], None] = logger.info) -> dict[str, float] | None:
    """The current default's headline figures on ``heldout`` (None when there is no
    default, or it cannot be loaded: then the candidate is promoted)."""
    from ..stages.classifier import PairClassifier

    found = registry.resolve_version("default", models_dir=models_dir)
    if found is None:
        return None
    progress(f"evaluating the current default {found[0]} on the same held-out data")
    try:
        current = PairClassifier.load("default", models_dir=models_dir)
        return headline_metrics(evaluate(current, heldout, fnc_threshold=extras.get("fnc_threshold"),
                                         fnc_calibration=extras.get("fnc_calibration")))
    except ModelError as err:
        logger.warning("current default cannot be loaded (%s); promoting the candidate", err)
        return None
