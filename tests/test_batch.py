"""`divergence batch`: incremental reruns, table input, failures, kill-and-resume, Ray = local."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.batch import (
    FINGERPRINT_NAME, BatchConfig, CaseAnalyser, read_manifest_table, run_batch, write_case_folders,
)
from pipeline.batch.outputs import exclusive
from pipeline.cli import app
from pipeline.config import RunConfig
from pipeline.errors import BatchError, CaseError
from pipeline.manifest import load_manifest
from pipeline.registry import model_versions
from tests.conftest import REPO, write_case

runner = CliRunner()
ARGS = ["--classifier", "none"]
SIDES = {"US": ["Trump", "Pompeo", "Washington"], "DPRK": ["Ri Yong Ho", "Choe Son Hui", "Pyongyang"]}

US = """THE PRESIDENT: North Korea wanted the sanctions lifted in their entirety. We couldn't do that.
THE PRESIDENT: They were willing to dismantle only part of Yongbyon. So we walked away from the deal.
"""
DPRK = """FOREIGN MINISTER RI: We asked only for a partial lifting of sanctions, five of the eleven resolutions.
FOREIGN MINISTER RI: We offered to dismantle all of the Yongbyon nuclear facilities. The United States walked away.
"""


def tiny_case(root: Path, case_id: str, *, us: str = US, dprk: str = DPRK) -> Path:
    return write_case(root, {"us.txt": ("us", "US", us), "dprk.txt": ("dprk", "DPRK", dprk)},
                      sides=SIDES, case_id=case_id)


def variants(root: Path, n: int) -> list[Path]:
    """``n`` small cases that differ in their numbers, so their reports differ."""
    return [tiny_case(root / f"case{i}", f"case-{i}", dprk=DPRK.replace("five of the eleven", f"{i + 2} of the {i + 9}"))
            for i in range(n)]


@pytest.fixture(scope="module")
def analyser(models, run_config):
    return CaseAnalyser(run_config, models=models)


def outputs(out: Path) -> dict[str, bytes]:
    """Every user-visible output but the log (which records runs, not results)."""
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name not in ("run.log", ".batch.lock"))
    return {str(p.relative_to(out)): p.read_bytes() for p in files if p.name != "summary.parquet"}


def differences(a: object, b: object, where: str = "") -> list[str]:
    """Paths at which two JSON values differ, to say *what* changed between two runs."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(a.keys() | b.keys(), key=str) for d in differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def assert_same_outputs(out: Path, reference: Path) -> None:
    got, want = outputs(out), outputs(reference)
    assert sorted(got) == sorted(want)
    for name in sorted(want):
        if name.endswith("report.json") and got[name] != want[name]:
            diff = differences(json.loads(want[name]), json.loads(got[name]))
            pytest.fail(f"{name} differs from the reference run at {len(diff)} place(s): {diff[:5]}")
    assert got == want
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary.parquet"), pd.read_parquet(reference / "summary.parquet"))


def log_entries(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "run.log").read_text().splitlines()]


def test_probed_model_versions_agree_with_the_loaded_models(models, run_config):
    # the driver skips unchanged cases on the probe; a mismatch would recompute every case on every run
    assert model_versions(run_config) == models.versions()


def test_unchanged_cases_are_skipped_and_changed_ones_recomputed(tmp_path, run_config, models, analyser):
    cases = tmp_path / "in"
    variants(cases, 2)
    out = tmp_path / "out"

    first = run_batch(cases, out, config=run_config, analyser=analyser)
    assert [(o.case_id, o.status) for o in first.outcomes] == [("case-0", "ok"), ("case-1", "ok")]
    for case_id in ("case-0", "case-1"):
        report = json.loads((out / case_id / "report.json").read_text())
        assert report["case"]["id"] == case_id and report["divergences"]
        assert (out / case_id / "report.html").is_file() and (out / case_id / FINGERPRINT_NAME).is_file()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == first.divergences > 0
    assert set(summary["case_id"]) == {"case-0", "case-1"}
    assert summary.columns[:6].tolist() == ["case_id", "divergence_id", "type", "topic", "topic_id", "score"]
    assert summary["claim_a"].notna().all()
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary.parquet").astype(object), summary.astype(object),
                                  check_dtype=False)
    before = outputs(out)

    second = run_batch(cases, out, config=run_config, analyser=analyser)
    assert [o.status for o in second.outcomes] == ["skipped", "skipped"]
    assert outputs(out) == before

    dprk = cases / "case1" / "dprk.txt"
    dprk.write_text(dprk.read_text().replace("Yongbyon nuclear facilities", "Yongbyon nuclear complex"))
    third = run_batch(cases, out, config=run_config, analyser=analyser)
    assert [(o.case_id, o.status) for o in third.outcomes] == [("case-0", "skipped"), ("case-1", "ok")]
    assert "Yongbyon nuclear complex" in (out / "case-1" / "report.json").read_text()
    assert (out / "case-0" / "report.json").read_bytes() == before["case-0/report.json"]

    # the run configuration is part of the fingerprint; --force ignores fingerprints
    changed = RunConfig(classifier="none", min_similarity=run_config.min_similarity + 0.05)
    fourth = run_batch(cases, out, config=changed, analyser=CaseAnalyser(changed, models=models))
    assert [o.status for o in fourth.outcomes] == ["ok", "ok"]
    forced = run_batch(cases, out, config=changed, options=BatchConfig(force=True),
                       analyser=CaseAnalyser(changed, models=models))
    assert [o.status for o in forced.outcomes] == ["ok", "ok"]

    entries = log_entries(out)  # appended, one line per case per run
    assert len(entries) == 10 and all({"case", "status", "seconds", "error"} <= e.keys() for e in entries)
    assert [e["status"] for e in entries[2:4]] == ["skipped", "skipped"]


def test_manifest_table_input(tmp_path, run_config, analyser):
    loose = tmp_path / "incoming"
    loose.mkdir()
    (loose / "US Press Conference.txt").write_text(US)
    (loose / "ri-briefing.txt").write_text(DPRK)
    (loose / "kcna.txt").write_text(DPRK.replace("five of the eleven", "five of the 11"))
    (loose / "manifest.csv").write_text(
        "path,case,side,speaker,date,title\n"
        "US Press Conference.txt,hanoi-week,US,Donald J. Trump,2019-02-28,Hanoi week\n"
        "ri-briefing.txt,hanoi-week,DPRK,Ri Yong Ho,2019-03-01,\n"
        "US Press Conference.txt,hanoi-kcna,US,Donald J. Trump,,\n"
        "kcna.txt,hanoi-kcna,DPRK,,2019-03-01,\n")
    out = tmp_path / "out"
    result = run_batch(loose, out, config=run_config, analyser=analyser)
    assert [(o.case_id, o.status) for o in result.outcomes] == [("hanoi-kcna", "ok"), ("hanoi-week", "ok")]

    report = json.loads((out / "hanoi-week" / "report.json").read_text())
    assert report["case"]["title"] == "Hanoi week"
    docs = {d["id"]: d for d in report["documents"]}
    assert set(docs) == {"us-press-conference", "ri-briefing"}
    assert (docs["ri-briefing"]["side"], docs["ri-briefing"]["speaker"]) == ("DPRK", "Ri Yong Ho")
    assert docs["us-press-conference"]["text"] == US
    assert (out / "_cases" / "hanoi-week" / "case.toml").is_file()

    # the same documents as a case folder give the same claims and flags
    folder = write_case(tmp_path / "folder" / "hanoi-week",
                        {"a.txt": ("us-press-conference", "US", US), "b.txt": ("ri-briefing", "DPRK", DPRK)},
                        case_id="hanoi-week", extra='title = "Hanoi week"')
    reference = json.loads(analyser(str(folder)).report_json)
    assert [c["text"] for c in report["claims"]] == [c["text"] for c in reference["claims"]]
    assert [(d["type"], d["claims"]) for d in report["divergences"]] == \
        [(d["type"], d["claims"]) for d in reference["divergences"]]

    assert [o.status for o in run_batch(loose, out, config=run_config, analyser=analyser).outcomes] == ["skipped"] * 2


def test_manifest_table_problems_name_the_file_and_line(tmp_path):
    table = tmp_path / "manifest.jsonl"
    table.write_text('{"path": "a.txt", "case": "c", "side": "US", "speaker": "T", "date": ""}\n'
                     '{"path": "b.txt", "case": "C D", "side": "DPRK", "speaker": "R", "date": ""}\n')
    with pytest.raises(CaseError, match=r"manifest\.jsonl: .*line 2: case id 'C D'.*\[E016\]"):
        read_manifest_table(table)
    table.write_text('{"path": "a.txt", "case": "c", "side": "US"}\n')
    with pytest.raises(CaseError, match=r"missing column\(s\) speaker, date"):
        read_manifest_table(table)
    csv_table = tmp_path / "manifest.csv"
    csv_table.write_text("path,case,side,speaker,date,id\na.txt,c,US,,,x\nb.txt,c,,,,y\n")
    with pytest.raises(CaseError, match=r"manifest\.csv: .*line 3: empty 'side'"):
        read_manifest_table(csv_table)
    csv_table.write_text("path,case,side,speaker,date,id\na.txt,c,US,,,x\nb.txt,c,DPRK,,,x\n")
    with pytest.raises(CaseError, match=r"line 3: duplicate document id 'x'"):
        read_manifest_table(csv_table)
    result = runner.invoke(app, [*ARGS, "batch", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "both manifest.csv and manifest.jsonl" in result.output


def test_table_cases_become_manifests_that_read_back_the_same(tmp_path):
    # written with tomli-w: quotes, backslashes, DEL and non-ASCII survive the trip through case.toml
    loose = tmp_path / "incoming"
    loose.mkdir()
    for name in ('q"uote.txt', "back\\slash.txt"):
        (loose / name).write_text(US)
    rows = [{"path": 'q"uote.txt', "case": "c", "side": "US", "speaker": 'Tr"ump \\ \x7f', "date": "2019-02-28",
             "title": "Hanoi: é 'x' \"y\""},
            {"path": "back\\slash.txt", "case": "c", "side": "DPRK side", "speaker": None, "date": None,
             "source": "https://example.org/a?b=c", "format": "transcript"}]
    (loose / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    [spec] = read_manifest_table(loose / "manifest.jsonl")
    [folder] = write_case_folders([spec], tmp_path / "cases")
    manifest = (folder / "case.toml").read_text(encoding="utf-8")
    assert manifest.startswith("# generated by `divergence batch`")
    back = load_manifest(folder)
    assert (back.id, back.title) == ("c", "Hanoi: é 'x' \"y\"")
    assert [(d.id, d.side, d.speaker, d.date, d.source, d.format) for d in back.documents] == \
        [(d.id, d.side, d.speaker, d.date, d.source, d.format) for d in spec.documents]
    assert [(folder / d.path).resolve() for d in back.documents] == [(loose / r["path"]).resolve() for r in rows]
    mtime = (folder / "case.toml").stat().st_mtime_ns
    write_case_folders([spec], tmp_path / "cases")  # unchanged: not rewritten, so fingerprints stay
    assert (folder / "case.toml").stat().st_mtime_ns == mtime


def test_failed_cases_are_listed_and_the_others_complete(tmp_path, models):
    cases = tmp_path / "in"
    tiny_case(cases / "good", "good")
    write_case(cases / "one-side", {"us.txt": ("us", "US", US)}, case_id="one-side")  # fails before analysis
    tiny_case(cases / "empty", "empty", dprk="")  # fails in the worker: the DPRK side has no text
    out = tmp_path / "out"
    result = runner.invoke(app, [*ARGS, "batch", str(cases), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "(1 analysed, 0 unchanged, 2 failed)" in result.output
    assert f"error: {cases / 'one-side' / 'case.toml'}: a case needs documents from at least two sides" in result.output
    assert "dprk.txt: document is empty [E007]" in result.output
    assert "[3/3]" in result.output  # one plain progress line per case when not on a terminal

    entries = {e["case"]: e for e in log_entries(out)}
    assert entries["good"]["status"] == "ok" and entries["good"]["error"] is None
    assert entries["one-side"]["status"] == entries["empty"]["status"] == "failed"
    assert "[E006]" in entries["one-side"]["error"] and "\n" not in entries["empty"]["error"]
    assert not (out / "empty").exists() and not (out / "one-side").exists()
    assert set(pd.read_csv(out / "summary.csv")["case_id"]) == {"good"}

    result = runner.invoke(app, [*ARGS, "batch", str(cases), "--out", str(out), "--fail-fast"])
    assert result.exit_code == 1
    assert "--fail-fast" in result.output and "(0 analysed, 1 unchanged, 1 failed)" in result.output


def test_a_second_batch_on_the_same_output_folder_is_refused(tmp_path, run_config):
    tiny_case(tmp_path / "in" / "a", "a")
    out = tmp_path / "out"
    out.mkdir()
    with exclusive(out), pytest.raises(BatchError, match=r"another batch is writing.*\[E115\]"):
        run_batch(tmp_path / "in", out, config=run_config)


def test_tampered_outputs_are_recomputed_and_a_deep_manifest_fails_alone(tmp_path, run_config, analyser):
    """Issue 14: a truncated or emptied report next to a valid fingerprint crashed (or was kept
    by) every rerun, and a TOML manifest nested 500 deep aborted the whole batch."""
    cases = tmp_path / "in"
    variants(cases, 2)
    (cases / "deep").mkdir()
    (cases / "deep" / "case.toml").write_text('id = "deep"\nv = ' + "[" * 600 + "]" * 600 + "\n")
    out = tmp_path / "out"
    first = run_batch(cases, out, config=run_config, analyser=analyser)
    assert [(o.case_id, o.status) for o in first.outcomes] == [("case-0", "ok"), ("case-1", "ok"), ("deep", "failed")]
    assert "nested more than 64 levels deep [E021]" in first.failed[0].error
    reference = outputs(out)

    os.truncate(out / "case-0" / "report.json", 1000)
    (out / "case-1" / "report.json").write_text("{}")
    (out / "case-1" / "report.html").write_text("")
    rerun = run_batch(cases, out, config=run_config, analyser=analyser)
    assert [(o.case_id, o.status) for o in rerun.outcomes] == [("case-0", "ok"), ("case-1", "ok"), ("deep", "failed")]
    assert outputs(out) == reference and rerun.divergences == first.divergences


def test_killed_batch_resumes_to_the_outputs_of_an_uninterrupted_run(tmp_path, run_config, analyser):
    cases = tmp_path / "in"
    variants(cases, 4)
    reference = tmp_path / "reference"
    run_batch(cases, reference, config=run_config, analyser=analyser)

    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "-m", "pipeline.cli", *ARGS, "batch", str(cases), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not ((out / "run.log").is_file() and '"ok"' in (out / "run.log").read_text()):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the batch never finished a case"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker processes, mid-batch
        proc.wait()
    finished = [p.parent.name for p in out.glob(f"*/{FINGERPRINT_NAME}")]
    assert 1 <= len(finished) < 4, "the kill should land mid-batch"
    for report in out.glob("*/report.json"):
        json.loads(report.read_text())  # whatever is visible is complete

    result = runner.invoke(app, [*ARGS, "batch", str(cases), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rerun = [e for e in log_entries(out) if e["run"] == log_entries(out)[-1]["run"]]
    assert sorted(e["case"] for e in rerun if e["status"] == "skipped") == sorted(finished)
    assert not list(out.rglob("*.tmp"))
    assert_same_outputs(out, reference)


@pytest.mark.ray
def test_ray_engine_writes_what_the_local_engine_writes(tmp_path, run_config, analyser):
    ray = pytest.importorskip("ray")
    cases = tmp_path / "in"
    variants(cases, 3)
    local = tmp_path / "local"
    run_batch(cases, local, config=run_config, analyser=analyser)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_batch(cases, tmp_path / "ray", config=run_config, options=BatchConfig(engine="ray", workers=2))
    finally:
        ray.shutdown()
    assert [o.status for o in result.outcomes] == ["ok"] * 3
    assert all(o.worker_rss_mb and o.worker_rss_mb > 0 for o in result.outcomes)
    assert_same_outputs(tmp_path / "ray", local)
