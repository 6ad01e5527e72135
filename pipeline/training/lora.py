"""LoRA fine-tuning of the pair classifier: the public fit API.

:func:`build_lora_model` wraps a base encoder (the bundled all-MiniLM-L6-v2 or any
BERT-style model) with a 3-way head and LoRA on every attention and feed-forward
projection, the pooler and head trained in full (``modules_to_save``), so a version
folder is a few MB and the base weights come from the installed package.
:func:`fit` trains any such model with the HF ``Trainer`` (length-grouped batches and
dynamic padding: most of the CPU speed). ``divergence train`` uses both, and so do
experiments such as ``evaluation/snli_ablation.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..stages.classifier import build_base_model
from .config import TrainConfig

# Every attention and feed-forward projection of a BERT-style encoder (a full-match regex,
# so the pooler's ``dense`` is left to ``modules_to_save``).
BERT_LORA_TARGETS = (
    r".*\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
)


def _tokenize(ds: Dataset, tokenizer: Any, max_length: int) -> Dataset:
    def enc(batch: dict[str, list]) -> dict[str, list]:
        out = tokenizer(batch["premise"], batch["hypothesis"], truncation=True, max_length=max_length)
        out["labels"] = batch["label"]
        return out

    return ds.map(enc, batched=True, remove_columns=ds.column_names, desc="tokenize")


def build_lora_model(config: TrainConfig, *, init_from: Path | None = None) -> tuple[Any, Any]:
    """(tokenizer, model): the base encoder with a 3-way head and LoRA on every attention
    and feed-forward projection (pooler and head trained in full), or, with ``init_from``,
    a trained version's adapter to continue from."""
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


def fit(model: Any, tokenizer: Any, train_ds: Dataset, config: TrainConfig, workdir: Path) -> dict[str, Any]:
    """Train ``model`` on ``train_ds`` (premise, hypothesis, label) with the HF ``Trainer``:
    length-grouped batches and dynamic padding, the schedule and seed of ``config``,
    stopped past ``config.time_budget_min``. ``workdir`` holds the Trainer's scratch files.
    Returns the training statistics the model card prints (seconds, steps, loss, pairs/s)."""
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

