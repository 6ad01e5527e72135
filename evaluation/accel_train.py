"""Train pair-classifier variants on an accelerator machine, standalone.

The project's trainer (`divergence train`, pipeline/training/classifier.py) needs `datasets`, spaCy
and the data under ../shared; an accelerator machine has torch, transformers, peft,
numpy and pandas only. So `evaluation/accel_prepare.py prepare` writes the exact
training pairs of each variant and every held-out set as gzipped JSONL, this script
trains the same LoRA recipe (same targets, same head, same hyperparameters) on the
GPU and writes, per variant, the adapter folder plus the fp32 probabilities of every
held-out pair, and `accel_prepare.py register` turns one of them into a registered
version with its model card. Nothing here imports the project.

    python evaluation/accel_train.py --data .gpu/data --base .gpu/base --out $OUT \
        --variants news_swapped,news,v1_recipe --reference minilm-lora-v1=models/minilm-lora-v1

Output per variant: ``<out>/<variant>.tar`` holding ``adapter/`` (peft files),
``probas.npz`` (one (n, 3) array per held-out set, LABELS order) and ``train.json``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import random
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

LABELS = ("entailment", "neutral", "contradiction")
BERT_LORA_TARGETS = (
    r".*\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
)


def read_jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def base_model(base: Path, device: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
        dtype=torch.float32,  # the carried weights are fp16; train in fp32 master weights
    )
    return tokenizer, model.to(device)


def batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-grouped batches (as the Trainer's group_by_length): shuffle, sort within
    mega-batches of 50, then shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * 50
    out = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: -lengths[i])
        out += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def encode(tokenizer, rows, max_length):
    enc = tokenizer([r["premise"] for r in rows], [r["hypothesis"] for r in rows], truncation=True, max_length=max_length)
    return enc["input_ids"], enc.get("token_type_ids")


def collate(ids, types, idx, device, pad_id):
    width = max(len(ids[i]) for i in idx)
    input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    token_types = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        n = len(ids[i])
        input_ids[row, :n] = torch.tensor(ids[i])
        mask[row, :n] = 1
        if types is not None:
            token_types[row, :n] = torch.tensor(types[i])
    return {"input_ids": input_ids.to(device, non_blocking=True), "attention_mask": mask.to(device, non_blocking=True),
            "token_type_ids": token_types.to(device, non_blocking=True)}


@torch.inference_mode()
def predict(model, tokenizer, rows, max_length, device, batch_size=256) -> np.ndarray:
    model.eval()
    ids, types = encode(tokenizer, rows, max_length)
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = np.zeros((len(rows), 3), dtype="float32")
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size].tolist()
        logits = model(**collate(ids, types, idx, device, tokenizer.pad_token_id)).logits.float()
        out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
    return out


def train_variant(name: str, cfg: dict, rows: list[dict], base: Path, device: str, deadline: float) -> tuple:
    from peft import LoraConfig, TaskType, get_peft_model

    torch.manual_seed(cfg["seed"])
    tokenizer, model = base_model(base, device)
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"],
                      lora_dropout=cfg["lora_dropout"], target_modules=BERT_LORA_TARGETS,
                      modules_to_save=["classifier", "pooler"])
    model = get_peft_model(model, lora)
    model.peft_config["default"].base_model_name_or_path = cfg["base_model"]
    ids, types = encode(tokenizer, rows, cfg["max_length"])
    labels = torch.tensor([r["label"] for r in rows], dtype=torch.long)
    rng = random.Random(cfg["seed"])
    epochs = cfg["epochs"]
    steps_per_epoch = math.ceil(len(rows) / cfg["batch_size"])
    total = int(math.ceil(steps_per_epoch * epochs))
    warmup = int(math.ceil(total * cfg["warmup_ratio"]))
    decay, no_decay = [], []
    for pname, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in pname else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"], fused=device == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    model.train()
    step, losses, start, stopped = 0, [], time.monotonic(), None
    while step < total:
        for idx in batches([len(x) for x in ids], cfg["batch_size"], rng):
            if step >= total:
                break
            batch = collate(ids, types, idx, device, tokenizer.pad_token_id)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.get("bf16", True)):
                logits = model(**batch).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[idx].to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step % 200 == 0:
                losses.append(round(float(loss.detach()), 4))
            if time.monotonic() > deadline:
                stopped = step
                break
        if stopped:
            break
    seconds = time.monotonic() - start
    stats = {"seconds": round(seconds, 1), "steps": step, "planned_steps": total, "loss_every_200": losses,
             "pairs_per_second": round(step * cfg["batch_size"] / seconds, 1), "device": torch.cuda.get_device_name(0)
             if device == "cuda" else "cpu"}
    if stopped:
        stats["stopped_early_at_step"] = stopped
    return tokenizer, model, stats


def load_reference(base: Path, folder: Path, device: str):
    from peft import PeftModel

    tokenizer, model = base_model(base, device)
    return tokenizer, PeftModel.from_pretrained(model, str(folder)).merge_and_unload().to(device)


def heldout_sets(data: Path) -> dict[str, list[dict]]:
    return {p.name[: -len(".jsonl.gz")]: read_jsonl(p) for p in sorted((data / "heldout").glob("*.jsonl.gz"))}


def write_tar(out: Path, name: str, files: dict[str, bytes]) -> None:
    with tarfile.open(out / f"{name}.tar", "w") as tar:
        for arc, blob in files.items():
            info = tarfile.TarInfo(arc)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def probas_blob(probas: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **probas)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--variants", required=True, help="comma-separated folders under <data>/variants, in priority order")
    ap.add_argument("--reference", action="append", default=[], help="NAME=FOLDER of a trained adapter to score too")
    ap.add_argument("--limit-rows", type=int, default=None, help="smoke test: train on the first N rows only")
    ap.add_argument("--budget-s", type=float, default=330.0, help="stop starting/continuing training past this")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    t0 = time.monotonic()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False  # held-out probabilities in true fp32
    args.out.mkdir(parents=True, exist_ok=True)
    heldout = heldout_sets(args.data)
    log: dict = {"device": device, "torch": torch.__version__, "heldout": {k: len(v) for k, v in heldout.items()}}
    print(json.dumps(log), flush=True)

    for ref in args.reference:
        name, folder = ref.split("=", 1)
        tok, model = load_reference(args.base, Path(folder), device)
        t = time.monotonic()
        probas = {k: predict(model, tok, v, 128, device) for k, v in heldout.items()}
        log[name] = {"eval_seconds": round(time.monotonic() - t, 1)}
        write_tar(args.out, name, {"probas.npz": probas_blob(probas), "train.json": json.dumps(log[name]).encode()})
        print(name, log[name], flush=True)
        del model

    for variant in [v for v in args.variants.split(",") if v]:
        remaining = args.budget_s - (time.monotonic() - t0)
        if remaining < 30:
            print(f"skipping {variant}: {remaining:.0f}s of budget left", flush=True)
            log[variant] = {"skipped": True}
            continue
        folder = args.data / "variants" / variant
        cfg = json.loads((folder / "config.json").read_text())
        # variants on the same pairs share one file: "train_from" names it, "drop_swapped"
        # leaves out its swapped contradictions
        rows = read_jsonl(args.data / "variants" / cfg.get("train_from", variant) / "train.jsonl.gz")
        if cfg.get("drop_swapped"):
            rows = [r for r in rows if not r.get("swapped")]
        if args.limit_rows:
            rows = rows[: args.limit_rows]
        tok, model, stats = train_variant(variant, cfg, rows, args.base, device, deadline=t0 + args.budget_s - 20)
        stats["pairs"] = len(rows)
        t = time.monotonic()
        probas = {k: predict(model, tok, v, cfg["max_length"], device) for k, v in heldout.items()}
        stats["eval_seconds"] = round(time.monotonic() - t, 1)
        adapter_dir = args.out / f".{variant}-adapter"
        model.save_pretrained(str(adapter_dir), save_embedding_layers=False)
        files = {f"adapter/{p.name}": p.read_bytes() for p in sorted(adapter_dir.iterdir()) if p.is_file()}
        for p in adapter_dir.iterdir():
            p.unlink()
        adapter_dir.rmdir()
        files["probas.npz"] = probas_blob(probas)
        files["train.json"] = json.dumps(stats).encode()
        write_tar(args.out, variant, files)
        log[variant] = stats
        print(variant, json.dumps(stats), flush=True)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    log["total_seconds"] = round(time.monotonic() - t0, 1)
    (args.out / "log.json").write_text(json.dumps(log, indent=1))
    print("done", log["total_seconds"], flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
