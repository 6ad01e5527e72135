"""Case loading: manifests, formats, offsets, and every kind of bad input the issue lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import CaseError
from pipeline.ingest import read_case, read_document
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
