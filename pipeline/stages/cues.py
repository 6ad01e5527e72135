"""The speech-cue lexicon of the attribution component: which verbs report speech, per frame.

Counts learned from the PolNeAR training split (``evaluation/polnear_attribution.py
--learn`` writes ``pipeline/data/cues.json``), kept apart from the extraction rules so
the component, the learner and the scorer share one reader. The lexicon travels with a
pipeline: ``divergence_attribution`` writes it in ``to_disk`` and reads it back in
``from_disk``, so a saved pipeline never needs the file it was initialised from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from spacy.util import registry

from ..errors import Errors, ModelError

__all__ = ["COMPONENT_VERSION", "DEFAULT_CUES_PATH", "FRAMES", "CueLexicon", "Frame", "load_cues", "read_cue_lexicon"]

#: Bumped whenever the rules change what is extracted (written with the lexicon in ``to_disk``).
COMPONENT_VERSION = "1.0.0"
DEFAULT_CUES_PATH = Path(__file__).resolve().parent.parent / "data" / "cues.json"

# Syntactic frames a cue verb is counted in (see ``attribution.cue_frame``), most specific first.
Frame = Literal["ccomp", "parenthetical", "xcomp", "dobj", "other"]
FRAMES: tuple[str, ...] = ("ccomp", "parenthetical", "xcomp", "dobj", "other")


@dataclass(frozen=True)
class CueLexicon:
    """Speech-cue verbs counted per syntactic frame, learned from annotated text.

    ``verbs[lemma][frame] = (hits, seen)``: the verb was seen ``seen`` times in that
    frame and ``hits`` of those were annotated as a cue. A verb fires as a cue in a
    frame when ``hits >= min_hits`` and ``hits / seen >= min_precision``; both
    thresholds are tuned on held-out training documents by the learner.
    """

    verbs: Mapping[str, Mapping[str, tuple[int, int]]]
    min_hits: int = 2
    min_precision: float = 0.5
    source: str = ""
    meta: Mapping[str, object] = field(default_factory=dict)

    def is_cue(self, lemma: str, frame: str) -> bool:
        hits, seen = self.verbs.get(lemma, {}).get(frame, (0, 0))
        return hits >= self.min_hits and seen > 0 and hits / seen >= self.min_precision

    def precision(self, lemma: str, frame: str) -> float:
        """How often the verb in this frame was annotated as a cue (0 when unseen)."""
        hits, seen = self.verbs.get(lemma, {}).get(frame, (0, 0))
        return hits / seen if seen else 0.0

    def with_thresholds(self, *, min_hits: int, min_precision: float) -> "CueLexicon":
        return CueLexicon(self.verbs, min_hits, min_precision, self.source, self.meta)

    def to_json(self) -> dict[str, object]:
        return {
            "version": COMPONENT_VERSION,
            "source": self.source,
            "min_hits": self.min_hits,
            "min_precision": self.min_precision,
            "meta": dict(self.meta),
            "verbs": {
                lemma: {frame: list(counts) for frame, counts in sorted(frames.items())}
                for lemma, frames in sorted(self.verbs.items())
            },
        }

    @classmethod
    def from_json(cls, data: object, *, path: str | Path | None = None) -> "CueLexicon":
        try:
            assert isinstance(data, dict), "expected a JSON object"
            verbs: dict[str, dict[str, tuple[int, int]]] = {}
            for lemma, frames in data["verbs"].items():
                verbs[lemma] = {}
                for frame, (hits, seen) in frames.items():
                    if frame not in FRAMES:
                        raise ValueError(f"unknown frame {frame!r} for {lemma!r}")
                    verbs[lemma][frame] = (int(hits), int(seen))
            return cls(
                verbs=verbs,
                min_hits=int(data.get("min_hits", 2)),
                min_precision=float(data.get("min_precision", 0.5)),
                source=str(data.get("source", "")),
                meta=dict(data.get("meta", {})),
            )
        except (AssertionError, KeyError, TypeError, ValueError) as err:
            raise ModelError(Errors.E080, path=path, detail=f"{type(err).__name__}: {err}") from None


def load_cues(path: str | Path | None = None) -> CueLexicon:
    """Load a cue lexicon (default: the one learned from PolNeAR train, shipped as data)."""
    return _load_cues_cached(str(Path(path) if path is not None else DEFAULT_CUES_PATH))


@lru_cache(maxsize=8)
def _load_cues_cached(path: str) -> CueLexicon:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(Errors.E080, path=path, detail="file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(Errors.E080, path=path, detail=str(err)) from None
    return CueLexicon.from_json(data, path=path)


@registry.readers("divergence.cue_lexicon.v1")
def read_cue_lexicon(path: str | None = None) -> dict[str, Any]:
    """A cue lexicon as JSON data for ``[initialize.components.divergence_attribution.cues]``
    (``path = null``: the shipped one). Checked here, so a bad file fails with E080."""
    return load_cues(path).to_json()
