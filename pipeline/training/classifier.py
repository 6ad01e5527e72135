"""Train the pair classifier: LoRA fine-tuning of a small encoder as an NLI cross-encoder.

No NLI model can be downloaded where this project runs, and users retrain on
their own labelled claims, so the project trains its own. The recipe:

1. data (:mod:`pipeline.training.data`): SICK train+trial, SNLI dev, ANLI dev, FNC-1
   (headline vs the body's most relevant sentences) and domain pairs made by corrupting
   the corpora's claims. Each public set is split by :mod:`pipeline.datasets.splits`
   into a part to train on and a part to report on; nothing reported was trained on.
2. model and fitting (:mod:`pipeline.training.lora`): the bundled all-MiniLM-L6-v2 (or
   any base) with a 3-way head and LoRA, trained with the HF ``Trainer``.
3. evaluation of the merged model on every held-out part
   (:mod:`pipeline.scoring.classifier`, with the frozen-embedding baseline of
   :mod:`pipeline.scoring.baselines`), a model card, ``metrics.json`` and a registry
   entry (:mod:`pipeline.training.card`); promoted only if it is not worse than the
   current default on the same held-out data (:mod:`pipeline.training.promotion`).

This module runs those steps and writes the version folder.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from datasets import Dataset

from .. import registry
from ..config import DEFAULT_MODELS_DIR
from ..datasets import nli as nli_data
from ..errors import DataError, Errors, ModelError
from ..files import atomic_write, publish_dir
from ..scoring.baselines import SentenceEmbedder, frozen_baseline
from ..scoring.classifier import evaluate, headline_metrics
from ..stages.classifier import MODEL_META, PairClassifier
from .card import registry_summary, render_card, write_model_meta
from .config import TrainConfig, TrainResult
from .data import build_datasets, cap_balanced, user_label_parts
from .lora import build_lora_model, fit
from .promotion import decide_promotion, default_metrics

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


def version_name(config: TrainConfig) -> str:
    """``config.version``, else ``nli-<UTC timestamp>`` (``smoke-...`` for the smoke recipe)."""
    if config.version:
        return config.version
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{'smoke' if config.smoke else 'nli'}-{stamp}"


def _with_user_labels(config: TrainConfig, train_parts: dict[str, Dataset], heldout: dict[str, Dataset],
                      models_dir: Path) -> tuple[dict[str, Dataset], str | None, Path | None]:
    """The training parts once the reviewers' labels are folded in, and the version to
    continue from: with a default version, the labels plus a replay sample of public
    data continue training it; without one, the labels join the public parts."""
    if not config.labels:
        return train_parts, None, None
    labels_train, heldout["labels"] = user_label_parts(config)
    current_default = registry.resolve_version("default", models_dir=models_dir)
    if current_default is None:
        return {**train_parts, "labels": labels_train}, None, None
    meta = json.loads((current_default[1] / MODEL_META).read_text(encoding="utf-8"))
    if meta.get("base_model") != config.base_model:
        raise DataError(
            Errors.E057,
            detail=f"the default version uses base {meta.get('base_model')!r}, not {config.base_model!r}",
        )
    replay = cap_balanced(nli_data.concat(train_parts.values()), config.replay_pairs, seed=config.seed, by="source")
    return {"labels": labels_train, "replay": replay}, current_default[0], current_default[1]


def _score_version(staging: Path, name: str, config: TrainConfig, *, heldout: Mapping[str, Dataset],
                   extras: Mapping[str, Any], train_parts: Mapping[str, Dataset], train_stats: dict[str, Any],
                   init_from: str | None, progress: Progress) -> dict[str, Any]:
    """``metrics.json`` of the version in ``staging``: held-out figures, training
    statistics, configuration, the frozen baseline and the promotion decision."""
    progress("evaluating on held-out data")
    clf = PairClassifier._load_version(staging, name=name)
    heldout_metrics = evaluate(
        clf, heldout, fnc_threshold=extras.get("fnc_threshold"), fnc_calibration=extras.get("fnc_calibration")
    )
    metrics: dict[str, Any] = {
        "version": name,
        "heldout": heldout_metrics,
        "train": {**train_stats, "pairs": {k: len(v) for k, v in train_parts.items()},
                  "total_pairs": sum(len(v) for v in train_parts.values())},
        "config": config.to_json(),
        "seed": config.seed,
        "init_from": init_from,
    }
    if config.baseline:
        progress("fitting the frozen-embedding baseline")
        metrics["baseline_logreg"] = frozen_baseline(train_parts, heldout, encoder=SentenceEmbedder(config.base_model),
                                                     seed=config.seed)
    # Compare with the default as it is now: another training may have promoted one meanwhile.
    current = None
    if config.promote == "auto":
        current = default_metrics(Path(config.models_dir), heldout, extras, progress=progress)
    promoted, reason = decide_promotion(config.promote, headline_metrics(heldout_metrics), current,
                                        tolerance=config.promote_tolerance)
    metrics["promotion"] = {"promoted": promoted, "reason": reason, "default_metrics": current}
    return metrics


def train(config: TrainConfig, *, progress: Progress = logger.info) -> TrainResult:
    """Train, evaluate on held-out data, write the version folder and register it."""
    import torch

    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    models_dir = Path(config.models_dir)
    name = version_name(config)
    if (models_dir / name).exists():
        raise DataError(Errors.E057, path=models_dir / name, detail="a version with this name already exists")

    progress("loading data")
    train_parts, heldout, extras = build_datasets(config)
    train_parts, init_name, init_from = _with_user_labels(config, train_parts, heldout, models_dir)
    train_ds = nli_data.concat(train_parts.values()).shuffle(seed=config.seed)
    if not len(train_ds):
        raise DataError(Errors.E057, detail="no training pairs after loading the sources")
    progress(f"training on {len(train_ds)} pairs: " + ", ".join(f"{k} {len(v)}" for k, v in train_parts.items()))

    torch.manual_seed(config.seed)
    tokenizer, model = build_lora_model(config, init_from=init_from)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = models_dir / f".staging-{name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        stats = fit(model, tokenizer, train_ds, config, staging / "trainer")
        shutil.rmtree(staging / "trainer", ignore_errors=True)
        model.save_pretrained(str(staging), save_embedding_layers=False)
        write_model_meta(staging, config)
        metrics = _score_version(staging, name, config, heldout=heldout, extras=extras, train_parts=train_parts,
                                 train_stats=stats, init_from=init_name, progress=progress)
        registry.write_json_atomic(staging / "metrics.json", metrics)
        (staging / "README.md").write_text(render_card(name, config, metrics), encoding="utf-8")
        publish_dir(staging, models_dir / name, overwrite=False)  # files made shareable, then renamed into place
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    promoted, reason = metrics["promotion"]["promoted"], metrics["promotion"]["reason"]
    registry.register_version(name, metrics=registry_summary(metrics), models_dir=models_dir)
    if promoted:
        registry.promote(name, models_dir=models_dir)
    return TrainResult(version=name, path=models_dir / name, metrics=metrics, promoted=promoted, reason=reason)


def evaluate_version(name: str, *, models_dir: str | Path | None = None, progress: Progress = logger.info) -> dict[str, Any]:
    """Re-run the held-out evaluation of a trained version with the current evaluation
    code, on the same splits it was trained with (read from its ``metrics.json``), and
    rewrite its metrics, card and registry entry. For when the evaluation protocol
    improves after a model was trained; the training figures are kept."""
    models_dir = Path(models_dir) if models_dir is not None else DEFAULT_MODELS_DIR
    found = registry.resolve_version(name, models_dir=models_dir)
    if found is None:
        known = ", ".join(sorted(registry.load_registry(models_dir)["versions"])) or "none"
        raise ModelError(Errors.E055, path=registry.registry_path(models_dir), name=name, known=known)
    name, folder = found
    metrics_file = folder / "metrics.json"
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        stored = metrics["config"]
    except (OSError, json.JSONDecodeError, KeyError) as err:
        raise ModelError(Errors.E053, path=metrics_file, detail=f"cannot read the training configuration: {err}") from err
    config = TrainConfig.from_json(stored)
    # the held-out parts do not depend on the domain pairs, so skip building them
    eval_config = replace(config, sources=tuple(s for s in config.sources if s != "domain"))
    progress(f"rebuilding the held-out sets of {name}")
    _, heldout, extras = build_datasets(eval_config)
    if config.labels and Path(config.labels).exists():
        heldout["labels"] = user_label_parts(config)[1]
    progress(f"evaluating {name}")
    clf = PairClassifier._load_version(folder, name=name)
    metrics["heldout"] = evaluate(
        clf, heldout, fnc_threshold=extras.get("fnc_threshold"), fnc_calibration=extras.get("fnc_calibration")
    )
    metrics["reevaluated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    registry.write_json_atomic(metrics_file, metrics)
    atomic_write(folder / "README.md", render_card(name, config, metrics))
    registry.register_version(name, metrics=registry_summary(metrics), models_dir=models_dir)
    return metrics
