"""What a trained pair-classifier version says about itself: model card, metadata, registry entry.

The card (``README.md``, a Hugging Face model card) names every source with its
licence, the held-out figures, the frozen baseline, the hyperparameters and whether
the version was promoted; ``divergence.json`` tells ``PairClassifier`` how to load it.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from .. import registry
from ..datasets.nli import LABELS
from ..scoring.classifier import headline_metrics
from ..stages.classifier import MODEL_META
from .config import REVERSIBLE_SOURCES, SWAPPABLE_SOURCES, TrainConfig

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
    for name in REVERSIBLE_SOURCES
})
# --swapped SOURCE adds "<source>_swapped": its contradiction pairs, premise and hypothesis swapped
LICENCES.update({
    f"{name}_swapped": (f"{LICENCES[name][0]}, training part: contradictions with premise and hypothesis swapped",
                        LICENCES[name][1])
    for name in SWAPPABLE_SOURCES
})


def registry_summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The figures the registry lists for a version: its headline figures and ANLI per round."""
    summary = headline_metrics(metrics["heldout"])
    anli = metrics["heldout"].get("anli", {})
    summary.update({f"anli_{r}": anli[r]["accuracy"] for r in ("R1", "R2", "R3") if r in anli})
    return summary


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
    """The version's README.md (a Hugging Face model card) from its config and metrics."""
    from jinja2 import Environment  # Undefined (not StrictUndefined): optional keys may be missing

    env = Environment(trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True)
    return env.from_string(_CARD).render(
        name=name, base=config.base_model, config=asdict(config), metrics=metrics, licences=LICENCES
    )


def write_model_meta(folder: Path, config: TrainConfig) -> None:
    """``divergence.json``: the base model, input length and label order the version was trained with."""
    registry.write_json_atomic(folder / MODEL_META, {
        "base_model": config.base_model,
        "max_length": config.max_length,
        "labels": list(LABELS),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
