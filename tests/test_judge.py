"""The learned divergence judge: its stored form, its decisions, and its training on gold events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.stages.align import Alignment
from pipeline.stages.divergence import judge_pairs
from pipeline.stages.judge import PAIR_FEATURES, PAIR_TYPES, Judge, LinearModel, PairContext, pair_features
from pipeline.schema import AlignedPair, Claim, Entity, Frame

FIXTURES = Path(__file__).parent / "fixtures" / "events"


def _claim(cid: str, side: str, text: str, **frame) -> Claim:
    return Claim(id=cid, doc_id=f"doc-{side}", side=side, claimer=side, text=text, start=0, end=len(text),
                 score=0.8, entities=[Entity("the harbour", "FACILITY", "HARBOUR", 0, 3)], frame=Frame(**frame))


def _constant(classes, features, logits) -> LinearModel:
    n = len(features)
    return LinearModel(classes=list(classes), features=list(features), mean=[0.0] * n, scale=[1.0] * n,
                       coef=[[0.0] * n for _ in logits], intercept=list(logits))


def _judge(*, p_div_feature: str, weight: float, intercept: float, types: dict[str, float],
           thresholds=(0.5, 0.5, 0.5)) -> Judge:
    n = len(PAIR_FEATURES)
    coef = [0.0] * n
    coef[PAIR_FEATURES.index(p_div_feature)] = weight
    parts = LinearModel(classes=["agreement", "divergence"], features=list(PAIR_FEATURES), mean=[0.0] * n,
                        scale=[1.0] * n, coef=[coef], intercept=[intercept])
    return Judge(version="judge-test", related=_constant(["other", "related"], PAIR_FEATURES, [8.0]), parts=parts,
                 types=_constant(list(types), PAIR_FEATURES, list(types.values())), omission=None,
                 thresholds=dict(zip(("divergence", "agreement", "omission"), thresholds)))


def test_linear_model_reproduces_sklearn_probabilities():
    from sklearn.linear_model import LogisticRegression

    from pipeline.training.judge_fit import fit_linear

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0.3, "divergence", "other")
    model = fit_linear(X, y, features=["a", "b", "c"], c=1.0, positive="divergence")
    assert model.classes == ["other", "divergence"]
    Z = np.clip((X - X.mean(0)) / np.maximum(X.std(0), 0.1), -4, 4)
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(Z, (y == "divergence").astype(int))
    ours = model.predict_proba(X)[:, 1]
    np.testing.assert_allclose(ours, ref.predict_proba(Z)[:, 1], atol=1e-4)
    # a value far outside the training spread weighs no more than four standard deviations
    far = model.predict_proba(np.array([[1e6, 0.0, 0.0]]))[:, 1]
    assert far == pytest.approx(model.predict_proba(np.array([[4 * X[:, 0].std() + X[:, 0].mean(), 0, 0]]))[:, 1], abs=1e-6)
    # the positive class is the one that grows with the feature that defines it
    assert ours[X[:, 0] > 2].min() > 0.5 > ours[X[:, 0] < -2].max()


def test_binary_model_without_positives_is_a_small_constant():
    from pipeline.training.judge_fit import fit_linear

    model = fit_linear(np.ones((9, 2)), ["other"] * 9, features=["a", "b"], c=1.0, positive="omission")
    p = model.predict_proba(np.zeros((3, 2)))[:, 1]
    assert model.classes == ["other", "omission"] and np.allclose(p, p[0]) and p[0] < 0.1


def test_judge_json_round_trip_and_registry(tmp_path):
    from pipeline.errors import ModelError
    from pipeline.registry import register_judge

    judge = _judge(p_div_feature="frame_quantity", weight=3.0, intercept=-1.0, types={"quantity": 1.0, "scope": 0.0})
    folder = tmp_path / "judge-a"
    folder.mkdir()
    (folder / "judge.json").write_text(json.dumps(judge.to_json()), encoding="utf-8")
    with pytest.raises(ModelError, match="no judge"):
        Judge.load("default", models_dir=tmp_path)
    register_judge("judge-a", metrics={"objective": 0.5}, promote_it=True, models_dir=tmp_path)
    for ref in ("default", "judge-a", str(folder)):
        loaded = Judge.load(ref, models_dir=tmp_path)
        assert loaded.version == "judge-a" and loaded.thresholds == judge.thresholds
        X = np.stack([np.arange(len(PAIR_FEATURES), dtype=float)])
        np.testing.assert_allclose(loaded.pair_probabilities(X), judge.pair_probabilities(X))
    (folder / "judge.json").write_text('{"divergence": {}}', encoding="utf-8")
    with pytest.raises(ModelError, match="unreadable judge"):
        Judge.load("judge-a", models_dir=tmp_path)


def test_judge_flags_the_pair_it_believes_and_explains_with_the_frames():
    a = _claim("a", "N", "Southport asked us to withdraw all twelve patrol boats.",
               quantities=[{"text": "twelve", "value": 12, "of": None, "unit": "boat", "start": 40, "end": 46}],
               cues=[{"kind": "scope:all", "text": "all", "start": 36, "end": 39}], predicates=["demand"])
    b = _claim("b", "S", "We asked them to withdraw three of the twelve boats.",
               quantities=[{"text": "three of the twelve", "value": 3, "of": 12, "unit": "boat", "start": 26,
                            "end": 45}], predicates=["demand"])
    c = _claim("c", "S", "Our fishermen lost income.")
    claims = {x.id: x for x in (a, b, c)}
    alignment = Alignment(pairs=[AlignedPair("a", "b", 0.7, ("HARBOUR",), "t0", 0.7, 1, 1),
                                 AlignedPair("a", "c", 0.4, (), "t1", 0.4, 2, 2)],
                          topic_of={"a": "t0", "b": "t0", "c": "t1"}, topic_names={"t0": "boats", "t1": "x"})
    judge = _judge(p_div_feature="frame_quantity", weight=6.0, intercept=-3.0,
                   types={"quantity": 2.0, "contradiction": 0.0, "scope": -1.0}, thresholds=(0.5, 0.9, 0.5))
    flags = judge_pairs(claims, alignment, judge=judge, probs=None)
    # the pair without a frame difference does not part: an agreement, at P = 1 - sigmoid(-3)
    by_type = {f.type: f for f in flags}
    assert sorted((f.claims[1], f.type) for f in flags) == [("b", "quantity"), ("c", "agreement")]
    flag = by_type["quantity"]
    agreement = by_type["agreement"]
    assert agreement.evidence["judge_probs"]["agreement"] == pytest.approx(1 / (1 + np.exp(-3)), abs=1e-3)
    # scores say how far above the judge's bar a flag is (0.5 at the bar): the quantity flag is
    # far above 0.5, the agreement (0.95 against a bar of 0.9) a little above it
    assert flag.score > 0.9 and 0.5 < agreement.score < 0.75
    assert "'all' vs 'three of the twelve'" in flag.explanation and "judge gives" in flag.explanation
    assert flag.evidence["judge"] == "judge-test" and set(flag.evidence["judge_probs"]["types"]) == {
        "quantity", "contradiction", "scope"}
    # the threshold is the judge's: raised above the pair's probability, nothing is flagged
    judge.thresholds.update(divergence=0.99, agreement=0.99)
    assert judge_pairs(claims, alignment, judge=judge, probs=None) == []


def test_pair_features_read_both_directions_of_the_classifier():
    a, b = _claim("a", "N", "The lane reopens in June."), _claim("b", "S", "The lane stays shut.")
    ctx = PairContext(a=a, b=b, cosine=0.6, combined=0.7, rank_ab=1, rank_ba=3,
                      probs_ab=(0.1, 0.2, 0.7), probs_ba=(0.3, 0.5, 0.2))
    f = dict(zip(PAIR_FEATURES, pair_features(ctx)))
    assert f["nli_contradiction_max"] == pytest.approx(0.7) and f["nli_contradiction_min"] == pytest.approx(0.2)
    assert f["nli_entailment_min"] == pytest.approx(0.1) and f["has_nli"] == 1.0
    assert f["recip_rank_ab"] == 1.0 and f["recip_rank_ba"] == pytest.approx(1 / 3) and f["mutual_nearest"] == 0.0
    assert len(PAIR_FEATURES) == len(pair_features(ctx))
    assert set(PAIR_TYPES) >= {"quantity", "scope", "contradiction", "added_condition", "attribution"}


def test_roc_auc():
    from pipeline.scoring.metrics import roc_auc

    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1], [0.9]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5]) == 0.5
    assert roc_auc([], [0.3]) is None


def test_real_event_quotes_are_located_even_where_the_text_normalised_no_break_spaces():
    from pipeline.scoring.real import load_real_event, locate_quote, real_case

    event = load_real_event(FIXTURES / "ferry-call")
    assert [d.id for d in event.divergences] == ["F-D1", "F-D2"] and event.divergences[1].b is None
    assert event.divergences[1].omitting_sides == ("Brisa",)
    assert event.divergences[0].types == ("added_condition",)
    texts = {d.doc_id: (FIXTURES / "ferry-call" / f"{d.doc_id}.txt").read_text(encoding="utf-8")
             for d in event.documents}
    normalised = {k: v.replace("\u00a0", " ") for k, v in texts.items()}
    for stored in (texts, normalised):
        report = {"documents": [{"id": k, "text": v} for k, v in stored.items()]}
        case = real_case(event, FIXTURES / "ferry-call", report)
        assert len(case.spans) == sum(len(d.statements) for d in event.documents)  # every quote located
        for (doc, i), span in case.spans.items():
            quote = event.document(doc).statements[i]
            assert " ".join(stored[doc][span.start:span.end].split()) == " ".join(quote.split())
    assert locate_quote("Talks\u00a0ended  early.", "Talks ended early.") == (0, 19)
    assert locate_quote("nothing here", "Talks ended") is None


@pytest.mark.slow
def test_train_judge_registers_a_version_that_runs_and_benchmarks(tmp_path):
    """The whole loop a user runs: fit on gold events, register, judge a case with it, score it."""
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.registry import default_judge

    models_dir = tmp_path / "models"
    models_dir.mkdir()
    runner = CliRunner()
    common = ["--classifier", "none", "--models-dir", str(models_dir)]
    result = runner.invoke(app, [*common, "train-judge", str(FIXTURES), "--version", "judge-t",
                                 "--models-dir", str(models_dir), "--work-dir", str(tmp_path / "cases")])
    assert result.exit_code == 0, result.output
    assert "promoted to default" in result.output and default_judge(models_dir) == "judge-t"
    stored = json.loads((models_dir / "judge-t" / "judge.json").read_text(encoding="utf-8"))
    assert stored["related"]["features"] == list(PAIR_FEATURES)
    assert set(stored["thresholds"]) == {"divergence", "agreement", "omission"}
    metrics = json.loads((models_dir / "judge-t" / "metrics.json").read_text(encoding="utf-8"))
    assert {r["event"] for r in metrics["events"]} == {"harbour-2031", "orchard-2032", "ferry-call"}
    assert "Leave-one-event-out" in (models_dir / "judge-t" / "README.md").read_text(encoding="utf-8")
    # a second version with a worse objective is registered but does not replace the default
    registry = json.loads((models_dir / "registry.json").read_text(encoding="utf-8"))
    registry["judge"]["versions"]["judge-t"]["metrics"]["objective"] = 9.0
    (models_dir / "registry.json").write_text(json.dumps(registry), encoding="utf-8")
    result = runner.invoke(app, [*common, "train-judge", str(FIXTURES / "harbour-2031.json"), str(FIXTURES / "orchard-2032.json"),
                                 "--version", "judge-u", "--models-dir", str(models_dir), "--work-dir", str(tmp_path / "cases")])
    assert result.exit_code == 0, result.output
    assert "not promoted" in result.output and default_judge(models_dir) == "judge-t"

    out = tmp_path / "bench.json"
    result = runner.invoke(app, [*common, "--judge", "judge-u", "benchmark", str(FIXTURES), "--mode", "fixed",
                                 "--out", str(out), "--work-dir", str(tmp_path / "cases")])
    assert result.exit_code == 0, result.output
    table = json.loads(out.read_text(encoding="utf-8"))
    assert table["judge"] == "judge-u" and len(table["events"]) == 3
    assert {"recall", "recall_flagged", "type_accuracy", "agreement_recall", "unmatched_per_gold_divergence",
            "auc"} <= set(table["mean"])
    assert "MEAN (all events)" in result.output

    case = tmp_path / "cases" / "harbour-2031"
    result = runner.invoke(app, [*common, "--judge", "judge-t", "run", str(case), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["models"]["judge"] == "judge-t"
    assert report["divergences"] and all(d["evidence"].get("judge") == "judge-t" for d in report["divergences"])


@pytest.mark.slow  # loads the models before it fails
def test_benchmark_names_a_missing_event_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, ["--classifier", "none", "benchmark", str(tmp_path / "nowhere.json")])
    assert result.exit_code == 2
    assert "nowhere.json" in result.output and "E100" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_reviewers_labels_become_judge_training_pairs(tmp_path, models):
    from pipeline.training.review_labels import label_rows

    a = _claim("c1", "N", "Southport asked us to withdraw all twelve patrol boats.")
    b = _claim("c2", "S", "We only asked them to withdraw three of the twelve boats.")
    c = _claim("c3", "S", "Our fishermen lost four weeks of income.")
    report = {"case": {"id": "harbour"}, "claims": [x.to_json() for x in (a, b, c)],
              "divergences": [{"id": "d1", "claims": ["c1", "c2"]}, {"id": "d2", "claims": ["c1", "c3"]}]}
    (tmp_path / "harbour").mkdir()
    (tmp_path / "harbour" / "report.json").write_text(json.dumps(report), encoding="utf-8")
    rows = [
        "case_id,claim_id_a,claim_id_b,decision,type",
        "harbour,c1,c2,corrected,quantity",  # a reviewer's correction: a divergence of this type
        "harbour,c1,c3,rejected,",  # not a divergence
        "harbour,c3,,accepted,omission",  # omissions have one claim: no pair to learn from
        "elsewhere,c1,c2,accepted,scope",  # a report that is not there is skipped
    ]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = label_rows(tmp_path / "labels.csv", reports=tmp_path, models=models)
    assert [(label, t) for _, label, t in out] == [("divergence", "quantity"), ("other", None)]
    features = dict(zip(PAIR_FEATURES, out[0][0]))
    assert 0.3 < features["cosine"] <= 1.0 and features["has_nli"] == 0.0  # the session models have no classifier


@pytest.mark.slow
def test_the_default_judge_opens_hanoi_with_the_sanctions_divergence(tmp_path):
    """What a user sees first on the bundled case, with the shipped classifier and judge."""
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.registry import default_judge

    hanoi = Path(__file__).resolve().parent.parent / "corpora" / "hanoi-2019"
    result = CliRunner().invoke(app, ["run", str(hanoi), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["models"]["judge"] == default_judge() and not [w for w in report["warnings"] if "W005" in w]
    claims = {c["id"]: c for c in report["claims"]}
    top = report["divergences"][:5]
    sanctions = [d for d in top if d["type"] != "agreement" and "sanctions" in " ".join(claims[c]["text"] for c in d["claims"])
                 and d["type"] in {"quantity", "scope", "contradiction"}]
    assert sanctions, [d["explanation"] for d in top]
    # the explanation names what differs: everything on one side, a part on the other
    assert any(("all" in d["explanation"] or "entirety" in d["explanation"])
               and ("part" in d["explanation"] or "five of the eleven" in d["explanation"]) for d in sanctions)


def test_judged_omissions_only_name_sides_that_leave_the_claim_unaddressed():
    from pipeline.stages.divergence import find_omissions
    from pipeline.stages.judge import OMISSION_FEATURES
    from pipeline.schema import Divergence

    site = Entity("engine test site", "FACILITY", "ENGINE-SITE", 10, 26)
    a = Claim(id="a", doc_id="d1", side="N", claimer="N", text="They will close the engine test site.", start=0,
              end=37, score=0.9, entities=[site])
    covered = Claim(id="b", doc_id="d1", side="N", claimer="N", text="Talks resume in May.", start=40, end=60, score=0.9)
    flagged = Claim(id="c", doc_id="d1", side="N", claimer="N", text="The ferry tolls double.", start=61, end=84,
                    score=0.9)
    s1 = Claim(id="s1", doc_id="d2", side="S", claimer="S", text="Talks will resume in May.", start=0, end=25, score=0.9)
    s2 = Claim(id="s2", doc_id="d2", side="S", claimer="S", text="Tolls stay as they are.", start=26, end=49, score=0.9)
    alignment = Alignment(pairs=[], topic_of={}, topic_names={},
                          best_other={"a": {"S": 0.61}, "b": {"S": 0.9}, "c": {"S": 0.2}, "s1": {"N": 0.9},
                                      "s2": {"N": 0.7}},
                          best_cosine={"a": {"S": 0.5}, "b": {"S": 0.9}, "c": {"S": 0.2}, "s1": {"N": 0.9},
                                       "s2": {"N": 0.7}})
    judge = _judge(p_div_feature="cosine", weight=0.0, intercept=0.0, types={"scope": 0.0})
    judge.omission = _constant(["other", "omission"], OMISSION_FEATURES, [3.0])  # every claim looks central
    already = [Divergence(id="", type="contradiction", topic="", claims=["c", "s2"], sides=["N", "S"], score=0.8,
                          explanation="")]
    from pipeline.stages.divergence import DivergenceConfig

    out = find_omissions([a, covered, flagged, s1, s2], alignment, parties=["N", "S"], flagged=already, judge=judge,
                         config=DivergenceConfig(max_omissions_ratio=1.0))
    # "b" is addressed (the other side comes near), "c" is already compared with S: only "a" is left
    assert [o.claims for o in out] == [["a"]]
    assert out[0].sides == ["N", "S"] and "never names 'engine test site'" in out[0].explanation
    assert out[0].evidence["judge_probs"]["omission"] == pytest.approx(1 / (1 + np.exp(-3)), abs=1e-3)
