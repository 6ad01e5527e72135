"""Incremental state: what a case's report depends on, hashed, and the ``.fingerprint`` that
vouches for a finished case.

A case is recomputed only when the content hash of what decides its report changes:
``case.toml``, every listed document's bytes, the gazetteer files,
``RunConfig.fingerprint()`` and the model versions (``registry.model_versions``).
Timestamps are not used; they change on every copy or checkout while the content stays
the same. A case's ``.fingerprint`` is written only after its report, so a batch killed
at any moment leaves each case either finished and fingerprinted, or redone next time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ..config import RunConfig
from ..errors import CaseError
from ..files import atomic_write
from ..manifest import MANIFEST_NAME, iter_checked, load_manifest, resolve_document
from ..schema import CaseSpec
from .config import CaseOutcome

FINGERPRINT_NAME = ".fingerprint"
REPORT_FILES = ("report.html", "report.json")


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


def commit_case(outcome: CaseOutcome, case_out: Path) -> None:
    """Write a finished case: report first, fingerprint last (the fingerprint vouches for the report).

    The fingerprint holds the inputs' hash and then the sha256 of each report file it
    vouches for, so an output edited, emptied or truncated after the run is not taken
    for up to date (``is_current``).
    """
    (case_out / FINGERPRINT_NAME).unlink(missing_ok=True)
    assert outcome.report_html is not None and outcome.report_json is not None and outcome.fingerprint
    bodies = {"report.html": outcome.report_html.encode("utf-8"), "report.json": outcome.report_json.encode("utf-8")}
    for name in REPORT_FILES:
        atomic_write(case_out / name, bodies[name])
    lines = [outcome.fingerprint] + [f"{hashlib.sha256(bodies[name]).hexdigest()}  {name}" for name in REPORT_FILES]
    atomic_write(case_out / FINGERPRINT_NAME, "\n".join(lines) + "\n")


def is_current(case_out: Path, fingerprint: str) -> bool:
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
