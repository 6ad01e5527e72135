"""Case loading: manifests, formats, offsets, and every kind of bad input the issue lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import CaseError
from pipeline.stages.ingest import read_case, read_document
from pipeline.manifest import load_manifest
from tests.conftest import HANOI, write_case

US = "THE PRESIDENT:  Thank you. (Applause.)  They wanted the sanctions lifted in their entirety.\n\nQ  Did he promise anything?\n\nTHE PRESIDENT:  He promised no testing.\n"
DPRK = "FOREIGN MINISTER RI:  (As interpreted.) We asked for the removal of five of the eleven resolutions.\n"


def _case(tmp_path: Path, **overrides) -> Path:
    docs = {"us.txt": ("us", "US", US), "dprk.txt": ("dprk", "DPRK", DPRK)}
    docs.update(overrides)
    return write_case(tmp_path / "case", docs)


def test_offsets_hold_for_every_turn_and_sentence_of_the_bundled_case():
    case = load_manifest(HANOI)
    documents, errors = read_case(case)
    assert not errors
    assert len(documents) >= 5
    for doc in documents:
        assert doc.sentences, doc.id
        for turn in doc.turns:
            assert doc.text[turn.start:turn.end].strip() == doc.text[turn.start:turn.end]
        for sentence in doc.sentences:
            chunk = doc.text[sentence.start:sentence.end]
            assert chunk and chunk == chunk.strip()
            turn = doc.turns[sentence.turn]
            assert turn.start <= sentence.start and sentence.end <= turn.end


def test_transcript_turns_keep_questions_stage_notes_and_speakers_apart(tmp_path):
    case = load_manifest(_case(tmp_path))
    us = read_document(case, case.documents[0])
    roles = [(t.role, us.text[t.start:t.end]) for t in us.turns]
    assert ("stage", "(Applause.)") in roles
    assert ("question", "Did he promise anything?") in roles
    statements = [text for role, text in roles if role == "statement"]
    assert "They wanted the sanctions lifted in their entirety." in statements
    assert all("THE PRESIDENT" not in text for _, text in roles)
    dprk = read_document(case, case.documents[1])
    assert [t.role for t in dprk.turns] == ["stage", "statement"]
    assert dprk.turns[1].speaker == "Foreign Minister Ri"


def test_main_speaker_label_takes_the_manifest_speaker(tmp_path):
    root = _case(tmp_path)
    toml = (root / "case.toml").read_text().replace('path = "us.txt"', 'path = "us.txt"\nspeaker = "Donald J. Trump"')
    (root / "case.toml").write_text(toml)
    case = load_manifest(root)
    us = read_document(case, case.documents[0])
    assert {t.speaker for t in us.turns if t.role == "statement"} == {"Donald J. Trump"}


def test_html_is_parsed_and_offsets_point_into_the_extracted_text(tmp_path):
    html = ("<html><head><script>var x = '<p>not text</p>';</script></head><body><h1>Briefing</h1>"
            "<p><b>FOREIGN MINISTER RI:</b> We proposed a <i>realistic</i> plan.</p><p>Q: Why?</p></body></html>")
    case = load_manifest(_case(tmp_path, **{"dprk.txt": ("dprk", "DPRK", DPRK), "b.html": ("b", "DPRK", html)}))
    doc = read_document(case, case.documents[2])
    assert "not text" not in doc.text and "<" not in doc.text
    sentences = [doc.text[s.start:s.end] for s in doc.sentences]
    assert "We proposed a realistic plan." in sentences
    assert [t.role for t in doc.turns][-1] == "question"


def test_json_turns(tmp_path):
    turns = [{"speaker": "Ri Yong Ho", "text": "We offered Yongbyon."}, {"speaker": "Q", "text": "When?"}]
    case = load_manifest(_case(tmp_path, **{"t.json": ("t", "DPRK", json.dumps(turns))}))
    doc = read_document(case, case.documents[2])
    assert [(t.speaker, t.role, doc.text[t.start:t.end]) for t in doc.turns] == [
        ("Ri Yong Ho", "statement", "We offered Yongbyon."), ("Q", "question", "When?")]


def test_transcript_without_labels_falls_back_to_manifest_speaker_with_a_warning(tmp_path):
    root = write_case(tmp_path / "c", {"a.txt": ("a", "US", "We walked away from the deal.\n"),
                                       "b.txt": ("b", "DPRK", DPRK)})
    toml = (root / "case.toml").read_text().replace('path = "a.txt"', 'path = "a.txt"\nspeaker = "Donald J. Trump"')
    (root / "case.toml").write_text(toml)
    case = load_manifest(root)
    doc = read_document(case, case.documents[0])
    assert doc.turns[0].speaker == "Donald J. Trump" and doc.turns[0].role == "narration"
    assert any("W002" in w and "a.txt" in w for w in doc.warnings)


def test_non_utf8_is_decoded_with_a_warning(tmp_path):
    text = "FOREIGN MINISTER RI:  Le ministre a dit : « pas de sanctions levées » — déjà vu, très réaliste.\n" * 5
    case = load_manifest(_case(tmp_path, **{"dprk.txt": ("dprk", "DPRK", text.encode("cp1252"))}))
    doc = read_document(case, case.documents[1])
    assert "très réaliste" in doc.text
    assert any("W001" in w for w in doc.warnings)


def test_crlf_files_keep_exact_offsets(tmp_path):
    case = load_manifest(_case(tmp_path, **{"us.txt": ("us", "US", US.replace("\n", "\r\n"))}))
    doc = read_document(case, case.documents[0])
    assert "\r" not in doc.text
    assert any(doc.text[s.start:s.end] == "He promised no testing." for s in doc.sentences)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda root: (root / "case.toml").unlink(), "case manifest not found"),
        (lambda root: (root / "case.toml").write_text("id = [unclosed"), "malformed case.toml"),
        (lambda root: (root / "case.toml").write_text('id = "Bad Id"\n[[documents]]\nid="a"\nside="US"\npath="us.txt"\n'),
         "invalid case manifest: id"),
        (lambda root: (root / "case.toml").write_text('id = "x"\n[[documents]]\nid="a"\npath="us.txt"\n'),
         "documents[0].side"),
        (lambda root: (root / "case.toml").write_text((root / "case.toml").read_text().replace('id = "dprk"', 'id = "us"')),
         "duplicate document id 'us'"),
        (lambda root: (root / "case.toml").write_text((root / "case.toml").read_text().replace('side = "DPRK"', 'side = "US"')),
         "at least two sides"),
    ],
)
def test_bad_manifests_give_one_line_naming_the_file(tmp_path, mutate, needle):
    root = _case(tmp_path)
    mutate(root)
    with pytest.raises(CaseError) as info:
        case = load_manifest(root)
        read_case(case)
    message = str(info.value)
    assert needle in message and "\n" not in message
    assert str(root) in message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "document is empty"),
        ("   \n\n  ", "document is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "looks binary"),
    ],
)
def test_bad_documents_are_named_and_do_not_lose_the_others(tmp_path, content, needle):
    root = _case(tmp_path, **{"x.txt": ("x", "DPRK", content)})
    case = load_manifest(root)
    documents, errors = read_case(case)
    assert [d.id for d in documents] == ["us", "dprk"]
    assert len(errors) == 1 and needle in str(errors[0]) and "x.txt" in str(errors[0])


def test_missing_document_file(tmp_path):
    root = _case(tmp_path)
    (root / "dprk.txt").unlink()
    documents, errors = read_case(load_manifest(root))
    assert "does not exist" in str(errors[0]) and "dprk.txt" in str(errors[0])


def test_huge_document_is_refused_before_reading(tmp_path):
    root = _case(tmp_path)
    with open(root / "dprk.txt", "wb") as fh:  # sparse 100 MB file: no memory, no disk
        fh.truncate(100 * 1024 * 1024)
    case = load_manifest(root)
    documents, errors = read_case(case)
    assert len(documents) == 1
    assert "100 MB, over the 50 MB limit" in str(errors[0])


def test_only_real_stage_notes_are_cut_out(tmp_path):
    text = ("FOREIGN MINISTER RI:  The measures (on the agenda since the weekend) were discussed. (As interpreted.)"
            " We asked for five resolutions (UN Resolution 2397.) to be eased. (Laughter.)\n")
    case = load_manifest(_case(tmp_path, **{"dprk.txt": ("dprk", "DPRK", text)}))
    doc = read_document(case, case.documents[1])
    stage = [doc.text[t.start:t.end] for t in doc.turns if t.role == "stage"]
    assert stage == ["(As interpreted.)", "(Laughter.)"]
    assert any("(on the agenda since the weekend)" in doc.text[s.start:s.end] for s in doc.sentences)


# --- transcripts and pages as published (issue 12); fixtures written by the team ---------

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture_case(tmp_path: Path, name: str, *, side: str = "US", speaker: str | None = None,
                  fmt: str | None = None, aliases: dict | None = None) -> Path:
    content = (FIXTURES / name).read_bytes()
    root = write_case(tmp_path / "case", {name: ("doc", side, content), "other.txt": ("other", "Other", DPRK)},
                      sides=aliases)
    toml = (root / "case.toml").read_text()
    extra = (f'\nspeaker = "{speaker}"' if speaker else "") + (f'\nformat = "{fmt}"' if fmt else "")
    (root / "case.toml").write_text(toml.replace(f'path = "{name}"', f'path = "{name}"{extra}'))
    return root


def _turn_texts(doc):
    return [(t.speaker, t.role, doc.text[t.start:t.end]) for t in doc.turns]


def test_white_house_labels_followed_by_no_break_spaces_are_recognised(tmp_path):
    case = load_manifest(_fixture_case(tmp_path, "whitehouse-briefing.txt", speaker="MS. MORROW"))
    doc = read_document(case, case.documents[0])
    assert not any("W002" in w for w in doc.warnings)
    turns = _turn_texts(doc)
    # every "MS. MORROW:" (one written "MS.\u00a0 MORROW:") is the press secretary, the manifest speaker
    said = [text for speaker, role, text in turns if speaker == "MS. MORROW"]
    assert any(text.startswith("Good afternoon.") for text in said)
    assert any(text.startswith("He did.") for text in said)
    assert "I\u2019ll leave it there." in said
    assert all("MORROW:" not in text for _, _, text in turns)
    # "Q" followed by no-break spaces opens a reporter's question, never the secretary's turn
    questions = [text for _, role, text in turns if role == "question"]
    assert len(questions) == 2 and questions[0].startswith("Thanks, Dana.") and "border exercises?" in questions[0]
    assert ("Dr. Okafor", "statement") in {(s, r) for s, r, _ in turns}
    assert [r for s, r, _ in turns][0] == "header"  # title, date, room and time are nobody's words


def test_sentences_do_not_trip_over_unicode_spaces_quotes_and_invisible_characters(tmp_path):
    text = ("MS. MORROW:\u00a0 The talks on the grain\u00adcorridor were \u201cproductive.\u201d\u00a0 "
            "Both sides\u200b agreed to meet again.\u2009 No date was set.\n")
    root = write_case(tmp_path / "c", {"a.txt": ("a", "US", text), "b.txt": ("b", "Other", DPRK)})
    case = load_manifest(root)
    doc = read_document(case, case.documents[0])
    sentences = [doc.text[s.start:s.end] for s in doc.sentences]
    assert sentences == ["The talks on the grain\u00adcorridor were \u201cproductive.\u201d",
                         "Both sides\u200b agreed to meet again.", "No date was set."]


def test_parse_view_maps_offsets_around_dropped_characters():
    from pipeline.stages.ingest import ParseView

    text = "grain\u00adcorridor\u200b now"
    view = ParseView(text)
    assert view.text == "graincorridor now"
    assert text[view.start(0):view.end(13)] == "grain\u00adcorridor"
    assert text[view.start(14):view.end(17)] == "now"
    assert view.to_view(text.index("now")) == 14


def test_kremlin_mixed_case_labels_questions_and_interpreter(tmp_path):
    case = load_manifest(_fixture_case(tmp_path, "kremlin-press.txt", side="Russia"))
    doc = read_document(case, case.documents[0])
    assert not any("W002" in w for w in doc.warnings)
    turns = _turn_texts(doc)
    by_role: dict[str, list] = {}
    for speaker, role, text in turns:
        by_role.setdefault(role, []).append((speaker, text))
    # "Question:" and a journalist's name whose every turn asks are questions, not the official's claims
    asked = [text for _, text in by_role["question"]]
    assert any(t.startswith("Mr. Sorokin, was a meeting") for t in asked)
    assert any(t.startswith("Did the Prime Minister mention") for t in asked)
    official = [text for speaker, text in by_role["statement"] if speaker == "Ivan Sorokin"]
    assert any(t.startswith("The Prime Minister suggested a meeting.") for t in official)
    # the interpreter's turn renders the official's words; the moderator is nobody's side
    assert ("Ivan Sorokin", "The grain corridor question will be taken up by the ministers.") in by_role["statement"]
    assert any(t.startswith("Thank you, that is all") for _, t in by_role["stage"])
    assert all(not t.startswith(("Question:", "Ivan Sorokin:", "Elena Markova:")) for _, _, t in turns)


def test_phrases_ending_in_a_colon_inside_speech_are_not_labels(tmp_path):
    text = ("THE PRESIDENT:  Let me be clear about one thing.\n\n"
            "On Norland: the exercises must end.\n\nAnother example: the corridor.\n\n"
            "Key Point: we will not move first.\n")
    root = write_case(tmp_path / "c", {"a.txt": ("a", "US", text), "b.txt": ("b", "Other", DPRK)})
    case = load_manifest(root)
    doc = read_document(case, case.documents[0])
    assert {t.label for t in doc.turns} == {"THE PRESIDENT"}


def test_bracketed_placeholder_labels_and_misspelt_operator(tmp_path):
    text = ("OPERTATOR:  Our first question comes from the line of Jo Park.\n\n"
            "Q  Did the leaders discuss the corridor?\n\n"
            "[Senior administration official]:  They did, at some length.\n")
    root = write_case(tmp_path / "c", {"a.txt": ("a", "US", text), "b.txt": ("b", "Other", DPRK)})
    case = load_manifest(root)
    doc = read_document(case, case.documents[0])
    assert [(s, r, t) for s, r, t in _turn_texts(doc)] == [
        ("Opertator", "stage", "Our first question comes from the line of Jo Park."),
        ("Reporter", "question", "Did the leaders discuss the corridor?"),
        ("Senior administration official", "statement", "They did, at some length.")]


def test_saved_html_page_keeps_the_main_text_only(tmp_path):
    case = load_manifest(_fixture_case(tmp_path, "saved-readout.html", fmt="html"))
    doc = read_document(case, case.documents[0])
    assert doc.text.startswith("Readout of the President\u2019s call with the Prime Minister of Norland")
    sentences = [doc.text[s.start:s.end] for s in doc.sentences]
    assert "The two leaders agreed that their teams would stay in close contact." in sentences
    for boilerplate in ("Briefings", "Search the site", "Related articles", "science museum", "Privacy policy",
                        "All rights reserved", "Subscribe", "window.dataLayer"):
        assert boilerplate not in doc.text
