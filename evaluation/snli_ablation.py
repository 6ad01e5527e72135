"""How far the bundled MiniLM gets on SNLI: the experiments behind the README's SNLI paragraph.

    python evaluation/snli_ablation.py --method lora --sources snli --epochs 1              # SNLI 0.712
    python evaluation/snli_ablation.py --method lora --sources snli --epochs 1 --lora-r 64  # SNLI 0.755
    python evaluation/snli_ablation.py --method full --sources snli                         # SNLI 0.793
    python evaluation/snli_ablation.py --method full --sources snli --reversed              # SNLI 0.801
    python evaluation/snli_ablation.py --method full --reversed --svd-rank 64               # SNLI 0.792, 0.7875 at rank 64

(SNLI held-out accuracy measured on 2 cores, seed 13; the last line was scored in bf16.)

Each run trains on the training parts of ``divergence train``'s splits (same hash-based
hold-out, so the figures compare with the model cards) and prints held-out accuracy on
SICK, SNLI and ANLI. ``--method lora`` is the recipe of ``divergence train`` (LoRA on every
projection, pooler and head in full); ``--method full`` trains every encoder weight matrix,
the pooler and the head (embeddings, biases and LayerNorms frozen), which is what
``--svd-rank`` can compress back into a LoRA-sized adapter: each weight change is cut to
its top singular directions, and the compressed model is evaluated too. Nothing is saved.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.datasets import nli as nli_data  # noqa: E402
from pipeline.scoring.classifier import evaluate  # noqa: E402
from pipeline.stages.classifier import PairClassifier, build_base_model  # noqa: E402
from pipeline.training.config import TrainConfig  # noqa: E402
from pipeline.training.data import build_datasets  # noqa: E402
from pipeline.training.lora import build_lora_model, fit  # noqa: E402

REPORTED = ("sick", "snli", "anli")


def _is_encoder_matrix(name: str) -> bool:
    return ".layer." in name and name.endswith(".weight") and "LayerNorm" not in name


def compress(model, base_state: dict, rank: int):
    """A copy of ``model`` whose encoder weight changes are truncated to ``rank`` by SVD."""
    import torch

    state = model.state_dict()
    low_rank = {}
    for name, weight in state.items():
        if _is_encoder_matrix(name):
            u, s, vh = torch.linalg.svd((weight - base_state[name]).float(), full_matrices=False)
            low_rank[name] = base_state[name] + (u[:, :rank] * s[:rank]) @ vh[:rank]
    out = copy.deepcopy(model)
    out.load_state_dict({**state, **low_rank})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=("lora", "full"), default="lora")
    parser.add_argument("--sources", default="sick,snli,anli,fnc1,domain", help="comma-separated training sources")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=None, help="default 5e-4 (lora) or 1e-4 (full)")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--reversed", action="store_true", help="add swapped SNLI pairs (nli_data.reverse_pairs)")
    parser.add_argument("--svd-rank", type=int, default=None, help="also evaluate the full model compressed to this rank")
    parser.add_argument("--max-pairs", type=int, default=None, help="cap per source (quick checks)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    config = TrainConfig(
        sources=sources,
        epochs=args.epochs,
        lr=args.lr or (5e-4 if args.method == "lora" else 1e-4),
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        reversed_sources=("snli",) if args.reversed else (),
        seed=args.seed,
        baseline=False,
        threads=args.threads,
    )
    if args.max_pairs:
        config = replace(config, max_pairs={s: args.max_pairs for s in (*sources, "domain")},
                         eval_max_pairs=args.max_pairs)
    config.validate()
    train_parts, heldout, _ = build_datasets(config)
    heldout = {k: v for k, v in heldout.items() if k in REPORTED}
    train_ds = nli_data.concat(train_parts.values()).shuffle(seed=config.seed)
    print(f"{args.method}: {len(train_ds)} training pairs ({', '.join(f'{k} {len(v)}' for k, v in train_parts.items())}), "
          f"{config.epochs} epochs, lr {config.lr}" + (f", LoRA r={config.lora_r}" if args.method == "lora" else ""))

    torch.manual_seed(config.seed)
    if args.method == "lora":
        tokenizer, model = build_lora_model(config)
    else:
        tokenizer, model = build_base_model(config.base_model)
        for name, param in model.named_parameters():
            param.requires_grad = _is_encoder_matrix(name) or name.startswith(("bert.pooler", "classifier"))
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        stats = fit(model, tokenizer, train_ds, config, Path(work))
    print(f"trained in {time.monotonic() - start:.0f} s ({stats['pairs_per_second']} pairs/s)")
    if args.method == "lora":
        model = model.merge_and_unload()

    def report(tag: str, m) -> None:
        scores = evaluate(PairClassifier(m, tokenizer, version=tag, precision="fp32"), heldout)
        print(f"{tag:>10}: " + "  ".join(f"{k} {v['accuracy']:.4f} (n={v['n']})" for k, v in scores.items()))

    report(args.method, model)
    if args.svd_rank:
        if args.method != "full":
            parser.error("--svd-rank compresses a --method full model")
        report(f"rank {args.svd_rank}", compress(model, base_state, args.svd_rank))


if __name__ == "__main__":
    main()
