"""Batch processing: many cases in, one report per case plus a summary table.

Three properties shape this module:

* **Incremental.** A case is recomputed only when the content hash of what decides
  its report changes: ``case.toml``, every listed document's bytes, the gazetteer
  files, ``RunConfig.fingerprint()`` and ``Models.versions()``. Timestamps are not
  used; they change on every copy or checkout while the content stays the same.
* **Resumable.** Every output is written atomically, and a case's ``.fingerprint``
  is written only after its report. A batch killed at any moment leaves each case either
  finished and fingerprinted, or not fingerprinted and redone on the next run. The
  rerun produces exactly what an uninterrupted run would.
* **Engine-agnostic.** The same ``CaseAnalyser`` (loaded models + one case in, the
  report text out) runs in a local process pool or in Ray Data actors. Only the
  driver writes files, so both engines give byte-identical outputs and the nodes of
  a Ray cluster need no shared output volume (they do need to read the inputs).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from ..config import RunConfig
from ..errors import BatchError, CaseError, DivergenceError, Errors
from ..manifest import MANIFEST_NAME, check_nesting, iter_checked, load_manifest, resolve_document
from ..files import atomic_write
from ..schema import CaseSpec, DocumentSpec

if TYPE_CHECKING:
    import pandas as pd

    from ..runner import Models

FINGERPRINT_NAME = ".fingerprint"
RUN_LOG_NAME = "run.log"
LOCK_NAME = ".batch.lock"
CASES_DIR_NAME = "_cases"  # generated case folders for manifest-table input; not a valid case id
TABLE_NAMES = ("manifest.csv", "manifest.jsonl")
TABLE_REQUIRED = ("path", "case", "side", "speaker", "date")
TABLE_OPTIONAL = ("id", "source", "format", "title")
SUMMARY_COLUMNS = ("case_id", "divergence_id", "type", "topic", "topic_id", "score",
                   "side_a", "side_b", "claim_a", "claim_b", "explanation")
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DIVERGENCE_DATA")
_CASE_ID = re.compile(r"^[a-z0-9-]+$")

Status = Literal["ok", "skipped", "failed"]


@dataclass(frozen=True)
class BatchConfig:
    """How to run a batch (what to compute is ``RunConfig``'s business)."""

    workers: int = 1
    engine: Literal["local", "ray"] = "local"
    address: str | None = None  # Ray cluster address; None: RAY_ADDRESS, a running local instance, or a new one
    force: bool = False  # recompute even unchanged cases
    fail_fast: bool = False  # stop at the first failed case
    threads_per_worker: int | None = None  # torch threads; None: cores // workers (1 per Ray actor)

    def validate(self) -> None:
        if self.workers < 1:
            raise BatchError(Errors.E114, detail=f"--workers must be at least 1, got {self.workers}")
        if self.engine not in ("local", "ray"):
            raise BatchError(Errors.E114, detail=f"--engine must be 'local' or 'ray', got {self.engine!r}")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise BatchError(Errors.E114, detail=f"--threads-per-worker must be at least 1, got {self.threads_per_worker}")
        if self.address and self.engine != "ray":
            raise BatchError(Errors.E114, detail="--address only applies to --engine ray")


@dataclass
class CaseOutcome:
    """One case's result, as it travels back from a worker (report text included)."""

    case_id: str
    case_dir: str
    status: Status
    seconds: float
    error: str | None = None
    fingerprint: str | None = None
    report_json: str | None = None
    report_html: str | None = None
    documents: int = 0
    words: int = 0
    worker_rss_mb: float | None = None  # peak RSS of the process that analysed the case
    fatal: bool = False  # the worker itself is unusable (models failed to load): stop the batch

    def log_entry(self, run: str) -> dict[str, Any]:
        return {"run": run, "case": self.case_id, "status": self.status, "seconds": round(self.seconds, 3),
                "error": self.error, "case_dir": self.case_dir, "documents": self.documents,
                "words": self.words, "worker_rss_mb": self.worker_rss_mb}


@dataclass
class BatchResult:
    out_dir: Path
    outcomes: list[CaseOutcome]  # report text dropped: it is on disk
    seconds: float
    divergences: int = 0  # rows in the summary table
    stopped_early: bool = False  # --fail-fast stopped the batch

    def by_status(self, status: Status) -> list[CaseOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[CaseOutcome]:
        return self.by_status("failed")

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped_early


@dataclass(frozen=True)
class _Job:
    case_id: str
    case_dir: str
    fingerprint: str
    size: int  # bytes of input, to start the largest cases first


# --- input: case folders or a manifest table --------------------------------------------


def read_manifest_table(path: str | Path) -> list[CaseSpec]:
    """Cases from a CSV or JSONL table (one document a row), for users who do not write TOML.

    Columns: ``path, case, side, speaker, date`` (``speaker``/``date`` may be blank) and
    optionally ``id, source, format, title`` (``title`` is the case's). Paths are relative
    to the table's folder. Returns in-memory specs rooted there; problems raise
    ``CaseError`` naming the table and the line.
    """
    path = Path(path)
    rows = _table_rows(path)
    if not rows:
        raise CaseError(Errors.E016, path=path, detail="the table has no rows")
    missing = [c for c in TABLE_REQUIRED if c not in rows[0][1]]
    if missing:
        raise CaseError(Errors.E016, path=path, detail=f"missing column(s) {', '.join(missing)} "
                        f"(required: {', '.join(TABLE_REQUIRED)}; optional: {', '.join(TABLE_OPTIONAL)})")

    cases: dict[str, dict[str, Any]] = {}
    for line, row in rows:
        where = f"line {line}"
        for column in ("path", "case", "side"):
            if not row.get(column):
                raise CaseError(Errors.E016, path=path, detail=f"{where}: empty {column!r}")
        case_id = row["case"]
        if not _CASE_ID.match(case_id):
            raise CaseError(Errors.E016, path=path, detail=f"{where}: case id {case_id!r} must match [a-z0-9-]+")
        case = cases.setdefault(case_id, {"title": None, "documents": [], "ids": set()})
        title = row.get("title")
        if title:
            if case["title"] not in (None, title):
                raise CaseError(Errors.E016, path=path,
                                detail=f"{where}: case {case_id!r} has two titles, {case['title']!r} and {title!r}")
            case["title"] = title
        doc_id = row.get("id")
        if doc_id and doc_id in case["ids"]:
            raise CaseError(Errors.E016, path=path, detail=f"{where}: duplicate document id {doc_id!r} in case {case_id!r}")
        case["documents"].append((doc_id, row))
        if doc_id:
            case["ids"].add(doc_id)

    specs = []
    for case_id, case in cases.items():
        documents = []
        for doc_id, row in case["documents"]:
            if not doc_id:  # derived from the file name, made unique within the case
                base = re.sub(r"[^a-z0-9]+", "-", Path(row["path"]).stem.lower()).strip("-") or "document"
                doc_id, n = base, 2
                while doc_id in case["ids"]:
                    doc_id, n = f"{base}-{n}", n + 1
                case["ids"].add(doc_id)
            documents.append(DocumentSpec(id=doc_id, side=row["side"], path=row["path"], speaker=row.get("speaker"),
                                          date=row.get("date"), source=row.get("source"), format=row.get("format")))
        specs.append(CaseSpec(id=case_id, root=path.parent.resolve(), documents=tuple(documents), title=case["title"]))
    return specs


def _table_rows(path: Path) -> list[tuple[int, dict[str, str | None]]]:
    """(line number, row) pairs with normalised column names and blank cells as None."""

    def clean(row: dict[Any, Any]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for key, value in row.items():
            if key is None:  # a CSV row with more cells than the header
                continue
            text = "" if value is None else str(value).strip()
            out[str(key).strip().lower()] = text or None
        return out

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise CaseError(Errors.E016, path=path, detail=str(err)) from None
    if path.suffix.lower() == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                check_nesting(line, path=f"{path}:{n}", what="manifest row")
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise CaseError(Errors.E016, path=path, detail=f"line {n}: {err.msg}") from None
            if not isinstance(item, dict):
                raise CaseError(Errors.E016, path=path, detail=f"line {n}: expected a JSON object")
            rows.append((n, clean(item)))
        # a JSONL row may omit optional keys; the header check wants every column seen
        if rows:
            keys = set().union(*(r.keys() for _, r in rows))
            rows[0] = (rows[0][0], {**{k: None for k in keys}, **rows[0][1]})
        return rows
    try:
        reader = csv.DictReader(io.StringIO(text))
        return [(reader.line_num, clean(row)) for row in reader if any((v or "").strip() for v in row.values() if isinstance(v, str))]
    except csv.Error as err:
        raise CaseError(Errors.E016, path=path, detail=str(err)) from None


def write_case_folders(specs: Iterable[CaseSpec], cases_dir: Path) -> list[Path]:
    """Materialise table cases as ordinary case folders (``cases_dir/<id>/case.toml``).

    Documents are referenced, not copied: paths are relative to the new folder so
    reports stay the same when the input and output trees move together. A manifest
    is rewritten only when its content changes, keeping fingerprints stable.
    """
    cases_dir.mkdir(parents=True, exist_ok=True)
    folders = []
    for spec in specs:
        folder = cases_dir.resolve() / spec.id  # resolved like CaseSpec.root, so "../" climbs the real tree
        lines = ["# generated by `divergence batch` from a manifest table; edit the table, not this file",
                 f"id = {_toml(spec.id)}"]
        if spec.title:
            lines.append(f"title = {_toml(spec.title)}")
        for doc in spec.documents:
            target = (spec.root / doc.path).resolve()  # an absolute doc.path stays itself
            try:
                rel = Path(os.path.relpath(target, folder)).as_posix()
            except ValueError:  # another drive (Windows)
                rel = target.as_posix()
            lines += ["", "[[documents]]", f"id = {_toml(doc.id)}", f"side = {_toml(doc.side)}", f"path = {_toml(rel)}"]
            for key in ("speaker", "date", "source", "format"):
                value = getattr(doc, key)
                if value:
                    lines.append(f"{key} = {_toml(value)}")
        text = "\n".join(lines) + "\n"
        manifest = folder / MANIFEST_NAME
        if not manifest.is_file() or manifest.read_text(encoding="utf-8") != text:
            atomic_write(manifest, text)
        folders.append(folder)
    return folders


def _toml(value: str) -> str:
    # a JSON string is a TOML basic string, except that TOML also wants DEL escaped
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


_DOCUMENT_SUFFIXES = {".txt", ".md", ".html", ".htm", ".json"}


def _looks_like_case(folder: Path) -> bool:
    """A case folder, or one with documents but no manifest (reported as a failed case);
    folders of other data (gazetteers, notes) are not cases."""
    if (folder / MANIFEST_NAME).is_file():
        return True
    return not any(folder.glob("*.jsonl")) and any(p.suffix.lower() in _DOCUMENT_SUFFIXES for p in folder.iterdir())


def find_cases(input_path: str | Path, *, out_dir: Path) -> list[Path]:
    """The case folders of a batch input (see ``find_input``)."""
    return find_input(input_path, out_dir=out_dir)[0]


def find_input(input_path: str | Path, *, out_dir: Path) -> tuple[list[Path], tuple[Path, ...]]:
    """The case folders of a batch input, and the folders their documents may be read from.

    ``input_path`` is a case folder, a folder of case folders, a folder holding
    ``manifest.csv``/``manifest.jsonl`` next to loose transcripts, or such a table
    itself. Table cases are written as case folders under ``out_dir/_cases``. A plain
    subfolder without ``case.toml`` is returned too, so that it is reported as a failed case
    instead of being silently ignored. A table's documents live beside the table, not in the
    generated folders, so the table's folder is returned as an allowed root (the user named
    the table; a case folder cannot name roots for itself).
    """
    root = Path(input_path)
    if not root.exists():
        raise BatchError(Errors.E113, path=root)
    table: Path | None = None
    if root.is_file():
        if root.suffix.lower() not in (".csv", ".jsonl"):
            raise BatchError(Errors.E110, path=root)
        table = root
    elif (root / MANIFEST_NAME).is_file():
        return [root], ()
    else:
        tables = [root / name for name in TABLE_NAMES if (root / name).is_file()]
        if len(tables) > 1:
            raise CaseError(Errors.E016, path=root, detail="both manifest.csv and manifest.jsonl are present; keep one")
        table = tables[0] if tables else None
    if table is not None:
        return write_case_folders(read_manifest_table(table), out_dir / CASES_DIR_NAME), (table.parent.resolve(),)

    out_resolved = out_dir.resolve()
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith((".", "_"))
               and d.resolve() != out_resolved and _looks_like_case(d)]
    if not folders:
        raise BatchError(Errors.E110, path=root)
    return folders, ()


# --- fingerprints -------------------------------------------------------------------------


def _feed(h: "hashlib._Hash", label: str, data: bytes) -> None:
    # length-prefixed, so no two different inputs concatenate to the same stream
    h.update(f"{label}\0{len(data)}\0".encode())
    h.update(data)


def environment_fingerprint(config: RunConfig, versions: dict[str, str]) -> str:
    """Hash of what every case of a batch shares: run config, gazetteers, model versions."""
    from ..stages.entities import gazetteer_files

    h = hashlib.sha256()
    _feed(h, "config", config.fingerprint().encode())
    _feed(h, "versions", json.dumps(versions, sort_keys=True).encode())
    for path in gazetteer_files(config.gazetteers):
        _feed(h, f"gazetteer:{path.name}", path.read_bytes())
    return h.hexdigest()


def case_inputs(case_dir: str | Path, *, max_doc_mb: float = RunConfig.max_doc_mb,
                allowed_roots: Sequence[Path] = ()) -> tuple[CaseSpec, str, int]:
    """(manifest, sha256 of case.toml and every listed document, total bytes).

    Documents pass the checks ``analyse_case`` applies (inside the case folder or an
    allowed root, a regular file, under ``max_doc_mb``) before a byte is hashed, and are
    hashed in chunks: a FIFO, ``/dev/zero`` or a file outside the case is never read.
    A document that fails them hashes as a marker naming the problem, so the case is
    redone once it is fixed; ``analyse_case`` reports it as skipped meanwhile.
    """
    case = load_manifest(case_dir)
    h = hashlib.sha256()
    manifest = (case.root / MANIFEST_NAME).read_bytes()  # load_manifest checked its type and size
    _feed(h, MANIFEST_NAME, manifest)
    size = len(manifest)
    for doc in case.documents:
        digest = hashlib.sha256()
        try:
            path = resolve_document(case, doc, allowed_roots=allowed_roots)
            for chunk in iter_checked(path, max_bytes=max_doc_mb * 1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
            data = digest.hexdigest().encode()
        except CaseError as err:
            data = f"<unreadable: {err.code}>".encode()
        _feed(h, f"document:{doc.id}", data)
    return case, h.hexdigest(), size


def case_fingerprint(inputs_digest: str, environment: str) -> str:
    return hashlib.sha256(f"{inputs_digest}\0{environment}".encode()).hexdigest()


def probe_versions(config: RunConfig) -> dict[str, str]:
    """``Models.versions()`` without loading any weights (reads package metadata and the registry).

    The driver decides what to skip with this, so a rerun with nothing changed starts
    no worker and loads no model; ``tests/test_batch.py`` checks it agrees with ``Models``.
    """
    import spacy
    from spacy import util as spacy_util

    from .. import __version__
    from ..registry import resolve_version

    ref = config.spacy_model
    try:
        if Path(ref).expanduser().exists():
            meta = spacy_util.get_model_meta(Path(ref).expanduser())
        elif spacy_util.is_package(ref):
            meta = spacy_util.get_model_meta(spacy_util.get_package_path(ref))
        else:
            meta = {"lang": "?", "name": ref, "version": "?"}
    except (OSError, ValueError):
        meta = {"lang": "?", "name": ref, "version": "?"}

    classifier = config.classifier
    if classifier.lower() == "none":
        version = "none"
    else:
        try:
            found = resolve_version(classifier, models_dir=Path(config.models_dir))
        except DivergenceError:
            found = None
        if found is not None:
            version = found[0]
        elif classifier == "default":
            version = "none"  # Models.load warns (W003) and runs without a classifier
        elif (Path(classifier).expanduser() / "divergence.json").is_file():
            version = Path(classifier).expanduser().name
        else:
            version = classifier
    return {
        "divergence": __version__,
        "spacy": spacy.__version__,
        "spacy_model": f"{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}",
        "encoder": config.encoder,
        "classifier": version,
        "judge": _probe_judge(config, version),
    }


def _probe_judge(config: RunConfig, classifier: str) -> str:
    """The judge version ``Models.load`` would report, reading only its small JSON file."""
    from ..stages.judge import JUDGE_META
    from ..registry import resolve_judge

    if config.judge.lower() == "none":
        return "none"
    try:
        path = resolve_judge(config.judge, models_dir=Path(config.models_dir))
    except DivergenceError:
        path = None
    if path is None:
        return "none"  # Models.load warns (W003) for the default judge and runs the hand rules
    try:
        raw = json.loads((path / JUDGE_META if path.is_dir() else path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "none"
    trained = (raw.get("meta") or {}).get("classifier") or "none"
    if classifier == "none" and trained != "none":
        return "none"  # W005: a judge trained on a classifier's outputs does not run without one
    return path.name if path.is_dir() else str(raw.get("version") or "judge")


# --- workers ------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


class CaseAnalyser:
    """Loaded models plus the one-case step; one per worker process or Ray actor.

    Returns the rendered report (JSON and HTML text) instead of writing it, so the
    driver is the only writer whatever the engine.
    """

    def __init__(self, config: RunConfig, *, models: Models | None = None, threads: int | None = None) -> None:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
            if threads == 1:
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from ..runner import Models

        self.config = config
        self.models = models if models is not None else Models.cached(config)
        self.environment = environment_fingerprint(config, self.models.versions())

    def __call__(self, case_dir: str, allowed_roots: Sequence[str | Path] = ()) -> CaseOutcome:
        from ..render import render_report_html
        from ..runner import analyse_case, report_json

        start = time.perf_counter()
        case_id = Path(case_dir).name
        roots = tuple(Path(r) for r in allowed_roots)
        try:
            # hashed before reading: a document edited mid-analysis then fails the next
            # run's check instead of being skipped with a stale report
            case, digest, _ = case_inputs(case_dir, max_doc_mb=self.config.max_doc_mb, allowed_roots=roots)
            case_id = case.id
            report = analyse_case(case_dir, config=self.config, models=self.models, allowed_roots=roots)
            html = render_report_html(report)
            body = report_json(report)
        except DivergenceError as err:
            return CaseOutcome(case_id, case_dir, "failed", time.perf_counter() - start, error=str(err),
                               worker_rss_mb=_peak_rss_mb())
        except Exception as err:  # noqa: BLE001 - one case's bug must not cost the others
            error = CaseError(Errors.E112, path=case_dir, detail=f"{type(err).__name__}: {err}".splitlines()[0][:300])
            return CaseOutcome(case_id, case_dir, "failed", time.perf_counter() - start, error=str(error),
                               worker_rss_mb=_peak_rss_mb())
        words = sum(len(d.get("text", "").split()) for d in report["documents"])
        return CaseOutcome(case_id, case_dir, "ok", time.perf_counter() - start,
                           fingerprint=case_fingerprint(digest, self.environment), report_json=body,
                           report_html=html, documents=len(report["documents"]), words=words,
                           worker_rss_mb=_peak_rss_mb())


# process-pool worker state: one CaseAnalyser per process, built by the initializer
_ANALYSER: CaseAnalyser | None = None
_ANALYSER_ERROR: str | None = None


def _die_with_parent(parent: int) -> None:
    """Make this worker process end when the batch driver ends, however it ends.

    A driver killed with SIGKILL runs no cleanup, and pool workers that each hold a
    gigabyte of models would otherwise live on as orphans. On Linux the kernel sends the
    worker SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere a
    daemon thread also polls the parent's pid once a second as a fallback.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the driver died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="divergence-parent-watch", daemon=True).start()


def _init_worker(config: RunConfig, threads: int | None, parent: int | None = None) -> None:
    global _ANALYSER, _ANALYSER_ERROR
    if parent is not None:
        _die_with_parent(parent)
    try:
        _ANALYSER = CaseAnalyser(config, threads=threads)
    except DivergenceError as err:
        _ANALYSER_ERROR = str(err)


def _analyse_in_worker(case_dir: str, allowed_roots: Sequence[str] = ()) -> CaseOutcome:
    if _ANALYSER is None:
        return CaseOutcome(Path(case_dir).name, case_dir, "failed", 0.0, error=_ANALYSER_ERROR, fatal=True)
    return _ANALYSER(case_dir, allowed_roots)


class RayCaseAnalyser:
    """Ray Data callable class: ``map_batches`` builds one per actor, so models load once per actor."""

    def __init__(self, config: RunConfig, threads: int, env: dict[str, str], allowed_roots: Sequence[str] = ()) -> None:
        os.environ.update(env)  # e.g. the HF offline switches, which a cluster node lacks
        self.allowed_roots = tuple(allowed_roots)
        try:
            self.analyser: CaseAnalyser | None = CaseAnalyser(config, threads=threads)
            self.error = None
        except DivergenceError as err:
            self.analyser, self.error = None, str(err)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        outcomes = []
        for case_dir in batch["case_dir"]:
            case_dir = str(case_dir)
            if self.analyser is None:
                outcomes.append(CaseOutcome(Path(case_dir).name, case_dir, "failed", 0.0, error=self.error, fatal=True))
            else:
                outcomes.append(self.analyser(case_dir, self.allowed_roots))
        return {f.name: [getattr(o, f.name) for o in outcomes] for f in fields(CaseOutcome)}


# --- engines ------------------------------------------------------------------------------


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _local_engine(jobs: Sequence[_Job], *, config: RunConfig, options: BatchConfig,
                  analyser: CaseAnalyser | None = None, allowed_roots: Sequence[Path] = ()) -> Iterator[CaseOutcome]:
    workers = min(options.workers, len(jobs))
    threads = options.threads_per_worker
    if threads is None and workers > 1:
        threads = max(1, available_cpus() // workers)  # N workers x default threads would oversubscribe
    roots = tuple(str(r) for r in allowed_roots)
    if workers == 1:  # in this process: no second copy of the models, plain tracebacks
        analyser = analyser or CaseAnalyser(config, threads=threads)
        for job in jobs:
            yield analyser(job.case_dir, roots)
        return

    import multiprocessing

    # spawn, not fork: forking a process that runs threads (tqdm, torch) can deadlock
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(config, threads, os.getpid()))
    finished = False
    try:
        with _signals_as_exit():
            futures = {pool.submit(_analyse_in_worker, job.case_dir, roots): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    error = CaseError(Errors.E112, path=job.case_dir,
                                      detail="a worker process died (killed, or out of memory)")
                    outcome = CaseOutcome(job.case_id, job.case_dir, "failed", 0.0, error=str(error))
                yield outcome
            finished = True
    finally:
        if not finished:  # stopped early (--fail-fast, a signal, an error): no case is worth waiting for
            _terminate_workers(pool)
        pool.shutdown(wait=finished, cancel_futures=True)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.terminate()
        except (OSError, ValueError, AttributeError):
            pass


@contextmanager
def _signals_as_exit() -> Iterator[None]:
    """SIGTERM/SIGHUP raise ``SystemExit`` in the driver, so the pool's cleanup runs and the
    workers stop with it (SIGINT already raises ``KeyboardInterrupt``). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise SystemExit(128 + signum)

    wanted = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, exit_on) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ray_engine(jobs: Sequence[_Job], *, config: RunConfig, options: BatchConfig,
                analyser: CaseAnalyser | None = None, allowed_roots: Sequence[Path] = ()) -> Iterator[CaseOutcome]:
    try:
        import ray
        import ray.data
        import ray.exceptions
    except ImportError as err:
        raise BatchError(Errors.E116, detail=f"{err} (pip install 'ray[data]')") from None

    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                     logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise BatchError(Errors.E116, detail=str(err).splitlines()[0]) from None
        started = True
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the batch has its own
        threads = options.threads_per_worker or 1
        env = {k: os.environ[k] for k in _OFFLINE_VARS if k in os.environ}
        # one row per block: Ray hands blocks to actors, so one big block would serialise the batch
        dataset = ray.data.from_items([{"case_dir": job.case_dir} for job in jobs], override_num_blocks=len(jobs))
        results = dataset.map_batches(
            RayCaseAnalyser,
            fn_constructor_kwargs={"config": config, "threads": threads, "env": env,
                                   "allowed_roots": [str(r) for r in allowed_roots]},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(options.workers, len(jobs))),  # `concurrency=` before Ray 2.51
            num_cpus=threads,
        )
        try:
            for row in results.iter_rows():
                yield CaseOutcome(**{f.name: _plain(row[f.name]) for f in fields(CaseOutcome)})
        except ray.exceptions.RayError as err:  # an actor lost (node down, out of memory): finished cases are kept
            raise BatchError(Errors.E116, detail=f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}; "
                             "rerun to finish the remaining cases") from None
    finally:
        if started:
            ray.shutdown()


def _plain(value: Any) -> Any:
    # Arrow/NumPy scalars back to Python, NaN (a missing float) to None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


# --- outputs ------------------------------------------------------------------------------


def summary_frame(reports: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per divergence across reports: the table users filter and sort."""
    import pandas as pd

    rows = []
    for report in reports:
        claims = {c["id"]: c for c in report.get("claims", [])}
        topics = report.get("topics", {})
        for d in report.get("divergences", []):
            ids = list(d.get("claims", [])) + [None, None]
            sides = list(d.get("sides", [])) + [None, None]
            rows.append({
                "case_id": report["case"]["id"],
                "divergence_id": d["id"],
                "type": d["type"],
                "topic": topics.get(d.get("topic"), d.get("topic")),
                "topic_id": d.get("topic"),
                "score": float(d["score"]),
                "side_a": sides[0],
                "side_b": sides[1],
                "claim_a": claims.get(ids[0], {}).get("text") if ids[0] else None,
                "claim_b": claims.get(ids[1], {}).get("text") if ids[1] else None,
                "explanation": d.get("explanation"),
            })
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return frame.astype({c: "string" for c in SUMMARY_COLUMNS if c != "score"} | {"score": "float64"})


def write_summary(out_dir: Path, case_ids: Iterable[str]) -> pd.DataFrame:
    """``summary.parquet`` and ``summary.csv`` from the reports on disk, cases in id order."""
    reports = []
    for case_id in sorted(set(case_ids)):
        path = out_dir / case_id / "report.json"
        reports.append(json.loads(path.read_text(encoding="utf-8")))
    frame = summary_frame(reports)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write(out_dir / "summary.parquet", buffer.getvalue())
    atomic_write(out_dir / "summary.csv", frame.to_csv(index=False))
    return frame


class _RunLog:
    """``run.log``: one JSON line per case as it finishes, appended across runs.

    Each line is one ``write`` on an ``O_APPEND`` descriptor, so a kill never leaves
    half a line, and the log of a killed run survives for the rerun to follow.
    """

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, entry: dict[str, Any]) -> None:
        os.write(self.fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        os.close(self.fd)


@contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.batch.lock``: two batches writing one folder would clean each other's temp files.
    The OS releases the lock when the process dies, so a killed batch never blocks its rerun."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; concurrent batches are the user's to avoid
        yield
        return
    path = out_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise BatchError(Errors.E118, path=out_dir, detail=err.strerror or str(err)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(Errors.E115, path=out_dir, lock=path) from None
        yield
    finally:
        os.close(fd)


def _remove_stale_temps(out_dir: Path) -> None:
    # left by a killed run between mkstemp and os.replace; never visible under a real name
    for pattern in (".*.tmp", "*/.*.tmp", f"{CASES_DIR_NAME}/*/.*.tmp"):
        for path in out_dir.glob(pattern):
            path.unlink(missing_ok=True)


REPORT_FILES = ("report.html", "report.json")


def _commit(outcome: CaseOutcome, case_out: Path) -> None:
    """Write a finished case: report first, fingerprint last (the fingerprint vouches for the report).

    The fingerprint holds the inputs' hash and then the sha256 of each report file it
    vouches for, so an output edited, emptied or truncated after the run is not taken
    for up to date (``_is_current``).
    """
    (case_out / FINGERPRINT_NAME).unlink(missing_ok=True)
    assert outcome.report_html is not None and outcome.report_json is not None and outcome.fingerprint
    bodies = {"report.html": outcome.report_html.encode("utf-8"), "report.json": outcome.report_json.encode("utf-8")}
    for name in REPORT_FILES:
        atomic_write(case_out / name, bodies[name])
    lines = [outcome.fingerprint] + [f"{hashlib.sha256(bodies[name]).hexdigest()}  {name}" for name in REPORT_FILES]
    atomic_write(case_out / FINGERPRINT_NAME, "\n".join(lines) + "\n")


def _is_current(case_out: Path, fingerprint: str) -> bool:
    """The case's fingerprint matches ``fingerprint`` and every report file still has the hash it vouches for."""
    stamp = case_out / FINGERPRINT_NAME
    try:
        lines = stamp.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return False
    if not lines or lines[0].strip() != fingerprint:
        return False
    vouched = {name: digest for digest, name in (line.split("  ", 1) for line in lines[1:] if "  " in line)}
    if set(vouched) != set(REPORT_FILES):
        return False  # a fingerprint from before output hashes were kept: recompute once
    for name, expected in vouched.items():
        h = hashlib.sha256()
        try:
            with open(case_out / name, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            return False
        if h.hexdigest() != expected:
            return False
    return True


def _prepare_out_dir(out_dir: Path) -> None:
    """Create the output folder, or say in one line why it cannot be written to."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BatchError(Errors.E118, path=out_dir, detail="it is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BatchError(Errors.E118, path=out_dir, detail=err.strerror or str(err)) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise BatchError(Errors.E118, path=out_dir, detail="permission denied")


# --- the batch ----------------------------------------------------------------------------


class ProgressReporter:
    """A tqdm bar (rate, ETA) on a terminal; one plain line per case otherwise (CI logs, files)."""

    def __init__(self, *, stream: IO[str] | None = None, bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bar_enabled = self.stream.isatty() if bar is None else bar
        self.bar: Any = None
        self.total = 0
        self.done = 0

    def start(self, total: int, prechecked: Sequence[CaseOutcome]) -> None:
        self.total, self.done = total, len(prechecked)
        skipped = sum(o.status == "skipped" for o in prechecked)
        for outcome in prechecked:
            if outcome.status == "failed":
                self._echo(f"failed {outcome.case_id}: {outcome.error}")
        self._echo(f"{total} cases: {skipped} unchanged (skipped), {total - len(prechecked)} to analyse")
        if self.bar_enabled and self.done < total:
            from tqdm.auto import tqdm

            # the bar starts at the prechecked count so its rate and ETA reflect analysed cases only
            self.bar = tqdm(total=total, initial=self.done, unit="case", file=self.stream, dynamic_ncols=True)

    def update(self, outcome: CaseOutcome) -> None:
        self.done += 1
        if self.bar is not None:
            if outcome.status == "failed":
                self.bar.write(f"failed {outcome.case_id}: {outcome.error}", file=self.stream)
            self.bar.update(1)
        else:
            tail = f": {outcome.error}" if outcome.error else ""
            self._echo(f"[{self.done}/{self.total}] {outcome.case_id} {outcome.status} {outcome.seconds:.1f}s{tail}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _echo(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def run_batch(input_path: str | Path, out_dir: str | Path, *, config: RunConfig,
              options: BatchConfig = BatchConfig(), reporter: ProgressReporter | None = None,
              analyser: CaseAnalyser | None = None, allowed_roots: Sequence[str | Path] = ()) -> BatchResult:
    """Analyse every case under ``input_path`` into ``out_dir``; skip the unchanged ones.

    Writes ``out_dir/<case id>/report.{json,html}`` + ``.fingerprint``, ``summary.parquet``,
    ``summary.csv`` and appends to ``run.log``. A failed case is listed and the
    others go on; ``BatchError`` is raised only when the batch itself cannot run.
    ``analyser`` lends already-loaded models to the single-process local engine
    (notebooks, tests); other engines load their own in each worker. Documents are read
    from inside their case folder, the folder of a manifest table, or ``allowed_roots``.
    """
    options.validate()
    if analyser is not None and analyser.config != config:
        raise BatchError(Errors.E114, detail="the analyser was built for another RunConfig")
    started = time.perf_counter()
    if not Path(input_path).exists():  # before creating the output folder for nothing
        raise BatchError(Errors.E113, path=input_path)
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir)
    run_id = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with _exclusive(out_dir):
        _remove_stale_temps(out_dir)
        case_dirs, table_roots = find_input(input_path, out_dir=out_dir)
        roots = tuple(dict.fromkeys([*table_roots, *(Path(r).resolve() for r in allowed_roots)]))
        environment = environment_fingerprint(config, probe_versions(config))

        prechecked: list[CaseOutcome] = []
        jobs: list[_Job] = []
        owner: dict[str, str] = {}
        for case_dir in case_dirs:
            t0 = time.perf_counter()
            try:
                case, digest, size = case_inputs(case_dir, max_doc_mb=config.max_doc_mb, allowed_roots=roots)
            except CaseError as err:
                prechecked.append(CaseOutcome(case_dir.name, str(case_dir), "failed", time.perf_counter() - t0, error=str(err)))
                continue
            if case.id in owner:
                err = CaseError(Errors.E111, path=case_dir / MANIFEST_NAME, case_id=case.id, other=owner[case.id])
                prechecked.append(CaseOutcome(case.id, str(case_dir), "failed", time.perf_counter() - t0, error=str(err)))
                continue
            owner[case.id] = str(case_dir)
            fingerprint = case_fingerprint(digest, environment)
            if not options.force and _is_current(out_dir / case.id, fingerprint):
                prechecked.append(CaseOutcome(case.id, str(case_dir), "skipped", time.perf_counter() - t0,
                                              fingerprint=fingerprint, documents=len(case.documents)))
            else:
                jobs.append(_Job(case.id, str(case_dir), fingerprint, size))
        jobs.sort(key=lambda j: (-j.size, j.case_id))  # largest first: the last worker idles least

        log = _RunLog(out_dir / RUN_LOG_NAME)
        outcomes: list[CaseOutcome] = []
        stopped = False
        if reporter is not None:
            reporter.start(len(case_dirs), prechecked)
        try:
            for outcome in prechecked:
                log.write(outcome.log_entry(run_id))
                outcomes.append(outcome)
            stopped = options.fail_fast and any(o.status == "failed" for o in prechecked)
            if jobs and not stopped:
                engine = _ray_engine if options.engine == "ray" else _local_engine
                by_dir = {job.case_dir: job for job in jobs}
                stream = engine(jobs, config=config, options=options, analyser=analyser, allowed_roots=roots)
                try:
                    for outcome in stream:
                        if outcome.fatal:  # models cannot load: every case would fail the same way
                            raise BatchError(Errors.E117, detail=outcome.error or "unknown error")
                        job = by_dir[outcome.case_dir]
                        outcome.case_id = job.case_id
                        if outcome.status == "ok":
                            _commit(outcome, out_dir / job.case_id)
                        outcome.report_json = outcome.report_html = None
                        log.write(outcome.log_entry(run_id))
                        outcomes.append(outcome)
                        if reporter is not None:
                            reporter.update(outcome)
                        if options.fail_fast and outcome.status == "failed":
                            stopped = True
                            break
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
        finally:
            log.close()
            if reporter is not None:
                reporter.close()
        done = [o.case_id for o in outcomes if o.status in ("ok", "skipped")]
        frame = write_summary(out_dir, done)
    outcomes.sort(key=lambda o: o.case_id)
    return BatchResult(out_dir=out_dir, outcomes=outcomes, seconds=time.perf_counter() - started,
                       divergences=len(frame), stopped_early=stopped)


__all__ = [
    "BatchConfig", "BatchResult", "CaseAnalyser", "CaseOutcome", "ProgressReporter", "RayCaseAnalyser",
    "case_fingerprint", "case_inputs", "environment_fingerprint", "find_cases", "find_input", "probe_versions",
    "read_manifest_table", "run_batch", "summary_frame", "write_case_folders", "write_summary",
]
