"""Training data, hold-out splits, user-label mapping, the registry and the smoke recipe end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datasets import Dataset

from pipeline import registry
from pipeline.datasets import nli as nli_data
from pipeline.errors import DataError, ModelError
from pipeline.datasets.nli import LABEL2ID, LABELS
from pipeline.datasets.splits import holdout
from pipeline.scoring import metrics
from pipeline.scoring import stances as fnc_stances

DATA = nli_data.data_root()
needs_data = pytest.mark.skipif(
    not (DATA / "sick").is_dir(), reason=f"public datasets not found at {DATA} (set DIVERGENCE_DATA)"
)

USER_ROWS = [
    {"premise": "We offered to close Yongbyon.", "hypothesis": "They offered to close all sites.", "type": "scope"},
    {"premise": "Talks will continue.", "hypothesis": "The talks go on.", "type": "agreement"},
    {"premise": "Sanctions stay.", "hypothesis": "The weather was fine.", "type": "unrelated"},
    {"premise": "They asked for 5 sanctions.", "hypothesis": "They asked for 11 sanctions.", "type": "quantity"},
    {"premise": "We will sign.", "hypothesis": "We will sign only if sanctions go.", "type": "added_condition"},
    {"premise": "Trump walked away.", "hypothesis": "Kim walked away.", "type": "attribution"},
    {"premise": "It happened.", "hypothesis": "It did not happen.", "type": "contradiction"},
]


# --------------------------------------------------------------------------- label mapping


def test_divergence_types_map_to_nli_labels() -> None:
    assert LABELS == ("entailment", "neutral", "contradiction")
    assert nli_data.ID2LABEL == {0: "entailment", 1: "neutral", 2: "contradiction"}
    assert nli_data.TYPE_TO_LABEL["agreement"] == "entailment"
    assert nli_data.TYPE_TO_LABEL["unrelated"] == "neutral"
    for t in ("contradiction", "quantity", "scope", "added_condition", "attribution"):
        assert nli_data.TYPE_TO_LABEL[t] == "contradiction"
    assert nli_data.FNC_STANCE_TO_LABEL == {
        "agree": "entailment", "disagree": "contradiction", "discuss": "neutral", "unrelated": "neutral"
    }


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "datasets"])
def test_user_labels_load_in_every_export_format(tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame(USER_ROWS)
    path = tmp_path / f"labels.{fmt}"
    if fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        path = tmp_path / "labels_ds"
        Dataset.from_pandas(frame).save_to_disk(str(path))
    ds = nli_data.load_user_labels(path)
    assert ds["source"] == ["labels"] * len(USER_ROWS)
    expected = [LABEL2ID[nli_data.TYPE_TO_LABEL[r["type"]]] for r in USER_ROWS]
    assert ds["label"] == expected


def test_bad_user_labels_name_the_file_and_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"premise": "a b", "hypothesis": "c d", "type": "maybe"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        nli_data.load_user_labels(path)
    assert str(path) in str(err.value) and "maybe" in str(err.value)
    path.write_text(json.dumps({"premise": "a b", "label": "scope"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="missing columns"):
        nli_data.load_user_labels(path)
    with pytest.raises(DataError, match="not found"):
        nli_data.load_user_labels(tmp_path / "absent.csv")


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        nli_data.load_snli(tmp_path / "snli")
    assert "snli" in str(err.value) and "[E050]" in str(err.value)


# --------------------------------------------------------------------------- hold-out


def _toy(n: int = 400) -> Dataset:
    return Dataset.from_dict(
        {
            "premise": [f"premise {i // 3}" for i in range(n)],  # 3 hypotheses per premise
            "hypothesis": [f"hypothesis {i}" for i in range(n)],
            "label": [i % 3 for i in range(n)],
            "source": ["toy"] * n,
        }
    )


def test_reversed_pairs_keep_only_labels_that_survive_the_swap() -> None:
    ds = Dataset.from_dict({
        "premise": ["A man plays a guitar on stage.", "A dog runs.", "Two kids swim."],
        "hypothesis": ["A person plays music.", "A cat sleeps.", "Kids are in a pool."],
        "label": [LABEL2ID["entailment"], LABEL2ID["contradiction"], LABEL2ID["neutral"]],
        "source": ["snli"] * 3,
    })
    rev = nli_data.reverse_pairs(ds)
    assert rev["premise"] == ["A person plays music.", "A cat sleeps."]
    assert rev["hypothesis"] == ["A man plays a guitar on stage.", "A dog runs."]
    # the general statement does not entail the specific one; a contradiction is symmetric
    assert [LABELS[i] for i in rev["label"]] == ["neutral", "contradiction"]
    assert set(rev["source"]) == {"snli_reversed"}


def test_holdout_is_deterministic_disjoint_and_grouped() -> None:
    ds = _toy()
    tr, te = holdout(ds, name="toy", fraction=0.3)
    tr2, te2 = holdout(ds.shuffle(seed=1), name="toy", fraction=0.3)
    assert sorted(te["hypothesis"]) == sorted(te2["hypothesis"])  # row order does not matter
    assert len(tr) + len(te) == len(ds)
    assert not set(tr["premise"]) & set(te["premise"])  # a premise never on both sides
    assert 0.15 < len(te) / len(ds) < 0.45
    _, other = holdout(ds, name="toy", fraction=0.3, seed=14)
    assert sorted(other["hypothesis"]) != sorted(te["hypothesis"])


def test_holdout_splits_fnc_by_body() -> None:
    ds = _toy().add_column("body_id", [i % 37 for i in range(400)])
    tr, te = holdout(ds, name="fnc1", fraction=0.2)
    assert not set(tr["body_id"]) & set(te["body_id"])


def test_fnc_score_matches_the_official_weighting() -> None:
    gold = ["agree", "unrelated", "discuss", "disagree"]
    assert metrics.fnc_score(gold, gold) == (3.25, 3.25)
    # related-but-wrong stance earns 0.25; unrelated-for-related earns nothing
    assert metrics.fnc_score(gold, ["discuss", "unrelated", "unrelated", "agree"]) == (0.25 + 0.25 + 0.25, 3.25)
    proba = np.eye(3)[[0, 1, 2]]
    assert fnc_stances.stances_from_proba(proba, [0.5, 0.5, 0.01], threshold=0.1) == ["agree", "discuss", "unrelated"]


def test_stance_offsets_correct_a_biased_readout_and_only_help() -> None:
    # "discuss" pairs that the NLI model reads as weak entailment: argmax says agree
    stances = ["discuss"] * 60 + ["agree"] * 20 + ["disagree"] * 20
    proba = np.array([[0.45, 0.40, 0.15]] * 60 + [[0.8, 0.15, 0.05]] * 20 + [[0.1, 0.2, 0.7]] * 20)
    offsets = fnc_stances.fit_stance_offsets(proba, stances)
    raw = metrics.fnc_score(stances, fnc_stances.stances_from_proba(proba, [1.0] * 100, threshold=0.5))[0]
    fitted = metrics.fnc_score(
        stances, fnc_stances.stances_from_proba(proba, [1.0] * 100, threshold=0.5, offsets=offsets)
    )[0]
    assert fitted == 100.0 and raw < fitted
    assert offsets[1] == 0.0 and offsets[0] < 0


@needs_data
def test_public_loaders_have_the_shared_schema() -> None:
    for ds, n in ((nli_data.load_sick(), 4934), (nli_data.load_snli(), 9842), (nli_data.load_anli(), 3200)):
        assert len(ds) == n
        assert ds.column_names[:4] == ["premise", "hypothesis", "label", "source"]
        assert set(ds["label"]) == {0, 1, 2}
    anli = nli_data.load_anli(rounds=("R2",))
    assert set(anli["round"]) == {"R2"} and len(anli) == 1000
    snli = nli_data.load_snli()
    assert not snli[0]["premise"].endswith(" .")  # detokenised


def test_swapped_contradictions_keep_only_disputes() -> None:
    ds = Dataset.from_dict({
        "premise": ["Officials confirmed the deal.", "The talks collapsed.", "The ship was seized."],
        "hypothesis": ["A deal was reached.", "The talks went well.", "Tensions rose in the strait."],
        "label": [LABEL2ID["entailment"], LABEL2ID["contradiction"], LABEL2ID["neutral"]],
        "source": ["emergent"] * 3,
    })
    swapped = nli_data.swap_contradictions(ds)
    assert swapped["premise"] == ["The talks went well."] and swapped["hypothesis"] == ["The talks collapsed."]
    assert [LABELS[i] for i in swapped["label"]] == ["contradiction"]
    assert set(swapped["source"]) == {"emergent_swapped"}


def test_holdout_groups_claims_and_topics() -> None:
    ds = _toy().add_column("claim_id", [f"c{i % 23}" for i in range(400)])
    tr, te = holdout(ds, name="emergent", fraction=0.3)
    assert not set(tr["claim_id"]) & set(te["claim_id"])
    ds = _toy().add_column("topic", [f"t{i % 19}" for i in range(400)])
    tr, te = holdout(ds, name="claimdiff", fraction=0.3)
    assert not set(tr["topic"]) & set(te["topic"])


def test_evaluate_proba_reports_what_stance_data_can_show() -> None:
    from pipeline.scoring.classifier import evaluate_proba

    emergent = Dataset.from_dict({
        "premise": ["a", "b", "c", "d"], "hypothesis": ["w", "x", "y", "z"],
        "label": [0, 2, 1, 2], "stance": ["for", "against", "observing", "against"], "source": ["emergent"] * 4,
    })
    claimdiff = Dataset.from_dict({
        "premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"], "label": [2, 0, 1],
        "relation": ["weaken", "strengthen", "neither"], "source": ["claimdiff"] * 3,
    })
    probas = {
        "emergent": np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]]),
        "claimdiff": np.array([[0.2, 0.2, 0.6], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]),
    }
    out = evaluate_proba(probas, {"emergent": emergent, "claimdiff": claimdiff})
    assert out["emergent"]["accuracy"] == 0.75
    assert out["emergent"]["f1"] == {"for": 1.0, "against": round(2 / 3, 4), "observing": round(2 / 3, 4)}
    # the "neither" pair is left out: weaken vs strengthen only
    assert out["claimdiff"]["auc_weaken_vs_strengthen"] == 1.0


@needs_data
def test_news_loaders_map_their_labels() -> None:
    mnli = nli_data.load_mnli()
    assert len(mnli) == 9815 + 9832 and set(mnli["part"]) == {"matched", "mismatched"}
    emergent = nli_data.load_emergent()
    assert len(emergent) == 2071
    assert nli_data.label_counts(emergent) == {"entailment": 992, "neutral": 775, "contradiction": 304}
    wice = nli_data.load_wice()
    assert len(wice) == 1043 and nli_data.label_counts(wice)["contradiction"] == 0
    assert all(p for p in wice["premise"])
    claimdiff = nli_data.load_claimdiff()
    assert nli_data.label_counts(claimdiff) == {"entailment": 1287, "neutral": 373, "contradiction": 197}
    for ds in (mnli, emergent, wice, claimdiff):
        assert ds.column_names[:4] == ["premise", "hypothesis", "label", "source"]


@pytest.mark.slow
@needs_data
def test_fnc1_pairs_use_relevant_body_sentences() -> None:
    ds = nli_data.load_fnc1(sentences=2)
    assert {"body_id", "stance", "relatedness"} <= set(ds.column_names)
    row = ds[0]
    assert row["stance"] in nli_data.FNC_STANCES
    assert row["label"] == LABEL2ID[nli_data.FNC_STANCE_TO_LABEL[row["stance"]]]
    assert len(nli_data.split_sentences(row["premise"])) <= 3
    rel = np.asarray(ds["relatedness"])
    unrelated = np.asarray(ds["stance"]) == "unrelated"
    assert rel[~unrelated].mean() > rel[unrelated].mean()  # relatedness separates unrelated pairs


# --------------------------------------------------------------------------- registry


def _fake_version(models_dir: Path, name: str, sick: float) -> None:
    (models_dir / name).mkdir(parents=True)
    registry.register_version(name, metrics={"sick": sick}, models_dir=models_dir)


def test_registry_promote_and_rollback(tmp_path: Path) -> None:
    _fake_version(tmp_path, "a", 0.8)
    _fake_version(tmp_path, "b", 0.85)
    assert registry.load_registry(tmp_path)["default"] is None
    registry.promote("a", models_dir=tmp_path)
    registry.promote("b", models_dir=tmp_path)
    data = json.loads((tmp_path / "registry.json").read_text())
    assert data["default"] == "b" and data["history"] == ["a", "b"]
    assert [v.name for v in registry.list_versions(tmp_path) if v.is_default] == ["b"]
    assert registry.rollback(models_dir=tmp_path).name == "a"
    data = registry.load_registry(tmp_path)
    assert data["default"] == "a" and data["history"] == ["a"]
    assert data["versions"]["b"]["promoted"] is False
    with pytest.raises(ModelError, match="nothing to roll back"):
        registry.rollback(models_dir=tmp_path)
    with pytest.raises(ModelError, match="unknown model version 'zzz'"):
        registry.promote("zzz", models_dir=tmp_path)
    assert not list(tmp_path.glob(".registry.json.*"))  # no temp files left behind


def test_corrupt_registry_is_reported(tmp_path: Path) -> None:
    (tmp_path / "registry.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError) as err:
        registry.list_versions(tmp_path)
    assert "registry.json" in str(err.value) and "[E054]" in str(err.value)


def test_promotion_rule() -> None:
    from pipeline.training.promotion import compare_with_default

    assert compare_with_default({"sick": 0.8}, None, tolerance=0.01)[0]
    assert compare_with_default({"sick": 0.795, "labels": 0.9}, {"sick": 0.80, "labels": 0.9}, tolerance=0.01)[0]
    ok, why = compare_with_default({"sick": 0.85, "labels": 0.89}, {"sick": 0.80, "labels": 0.9}, tolerance=0.01)
    assert not ok and "labels" in why
    ok, why = compare_with_default({"snli": 0.70}, {"snli": 0.75}, tolerance=0.01)
    assert not ok and "snli" in why


# --------------------------------------------------------------------------- smoke recipe end to end


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from pipeline.training.classifier import train
    from pipeline.training.config import TrainConfig

    models_dir = tmp_path_factory.mktemp("models")
    config = TrainConfig.smoke_recipe(models_dir=str(models_dir), version="smoke-a", threads=1)
    return models_dir, train(config)


@pytest.mark.slow
@needs_data
def test_smoke_recipe_writes_a_small_promoted_version(smoke_run) -> None:
    from pipeline.stages.classifier import PairClassifier

    models_dir, result = smoke_run
    folder = models_dir / "smoke-a"
    assert result.path == folder and result.promoted
    for name in ("adapter_model.safetensors", "adapter_config.json", "divergence.json", "README.md", "metrics.json"):
        assert (folder / name).is_file(), name
    assert sum(f.stat().st_size for f in folder.iterdir()) < 10 * 2**20
    card = (folder / "README.md").read_text()
    for licence in ("CC BY-NC-SA 3.0", "CC BY-SA 4.0", "CC BY-NC 4.0", "none stated"):
        assert licence in card
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {"sick", "snli", "anli", "fnc1"} <= set(metrics["heldout"])
    assert {"R1", "R2", "R3"} <= set(metrics["heldout"]["anli"])
    assert 0 < metrics["heldout"]["fnc1"]["relative"] <= 1
    assert registry.load_registry(models_dir)["default"] == "smoke-a"
    clf = PairClassifier.load("default", models_dir=models_dir)
    proba = clf.predict_proba([("The talks ended early.", "The talks did not end early.")])
    assert proba.shape == (1, 3) and abs(float(proba.sum()) - 1) < 1e-5


@pytest.mark.slow
@needs_data
def test_retraining_on_user_labels_is_gated_by_the_default(smoke_run, tmp_path: Path) -> None:
    from pipeline.training.classifier import train
    from pipeline.training.config import TrainConfig

    models_dir, _ = smoke_run
    labels = tmp_path / "labels.jsonl"
    pd.DataFrame(USER_ROWS * 6).assign(premise=lambda f: [f"{p} ({i})" for i, p in enumerate(f["premise"])]).to_json(
        labels, orient="records", lines=True
    )
    config = TrainConfig.smoke_recipe(
        models_dir=str(models_dir), version="smoke-labels", labels=str(labels), sources=("sick", "snli"), threads=1
    )
    result = train(config)
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert metrics["init_from"] == "smoke-a"
    assert metrics["train"]["pairs"]["labels"] > 0 and metrics["train"]["pairs"]["replay"] > 0
    assert "labels" in metrics["heldout"]
    decision = metrics["promotion"]
    assert decision["default_metrics"] is not None and decision["reason"]
    data = registry.load_registry(models_dir)
    assert "smoke-labels" in data["versions"]
    assert (data["default"] == "smoke-labels") == result.promoted
