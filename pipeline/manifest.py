"""Reading and validating ``case.toml`` (CONTRACTS §1).

pydantic does the validation so every problem is reported with the field path
("documents[2].side: field required"); the result is the plain ``CaseSpec``
dataclass the rest of the pipeline uses.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import CaseError, Errors
from .schema import NON_PARTY_SIDES, CaseSpec, DocumentSpec, SideSpec

MANIFEST_NAME = "case.toml"
# A case folder may come from someone else: these bound what its manifest can make the tool do.
MAX_MANIFEST_BYTES = 1024 * 1024  # a case.toml of a thousand documents is ~200 KB
MAX_NESTING = 64  # [ and { levels in a manifest (TOML) or JSON input; tomllib and json recurse per level
MAX_DOCUMENTS = 1000  # documents per case
FORMATS = {"txt": "transcript", "md": "transcript", "transcript": "transcript", "html": "html",
           "htm": "html", "json": "json", "text": "transcript", "article": "article", "prose": "article"}


class _Document(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)
    side: str = Field(min_length=1)
    path: str = Field(min_length=1)
    speaker: str | None = None
    date: str | None = None
    source: str | None = None
    format: str | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in FORMATS:
            raise ValueError(f"unknown format {value!r} (use one of: transcript, article, txt, md, html, json)")
        return value


class _Side(BaseModel):
    model_config = ConfigDict(extra="allow")
    aliases: list[str] = []


class _Case(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str | None = None
    date: str | None = None
    documents: list[_Document] = Field(min_length=1)
    sides: dict[str, _Side] = {}


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in first["loc"]).replace(".[", "[")
    extra = f" ({len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{where}: {first['msg']}{extra}"


def load_manifest(case_dir: str | Path) -> CaseSpec:
    """Parse and validate a case folder's manifest; raise ``CaseError`` with one line on any problem."""
    root = Path(case_dir)
    if not root.is_dir():
        raise CaseError(Errors.E013, path=root)
    path = root / MANIFEST_NAME
    if not path.exists():
        raise CaseError(Errors.E001, path=root)
    try:
        data = read_checked(path, max_bytes=MAX_MANIFEST_BYTES)
    except CaseError:
        raise CaseError(Errors.E024, path=path, limit_kb=MAX_MANIFEST_BYTES // 1024) from None
    try:
        text = data.decode("utf-8")
        check_nesting(text, path=path, what="case.toml", toml=True)
        raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CaseError(Errors.E002, path=path, detail=str(err).splitlines()[0]) from None
    try:
        case = _Case.model_validate(raw)
    except ValidationError as err:
        raise CaseError(Errors.E003, path=path, detail=_first_error(err)) from None
    if len(case.documents) > MAX_DOCUMENTS:
        raise CaseError(Errors.E022, path=path, count=len(case.documents), limit=MAX_DOCUMENTS)

    seen: set[str] = set()
    for doc in case.documents:
        if doc.id in seen:
            raise CaseError(Errors.E005, path=path, doc_id=doc.id)
        seen.add(doc.id)
    resolved = root.resolve()
    check_duplicate_paths(resolved, ((d.id, d.path) for d in case.documents), manifest=path)
    # sides declared in [sides] count: an analyst's note alone can report two parties
    parties = set(case.sides) | {d.side for d in case.documents if d.side.lower() not in NON_PARTY_SIDES}
    if len(parties) < 2:
        raise CaseError(Errors.E006, path=path, sides=sorted(parties) or "none")

    documents = tuple(
        DocumentSpec(id=d.id, side=d.side, path=d.path, speaker=d.speaker, date=d.date,
                     source=d.source, format=d.format)
        for d in case.documents
    )
    sides = {name: SideSpec(name=name, aliases=tuple(s.aliases)) for name, s in case.sides.items()}
    return CaseSpec(id=case.id, root=resolved, documents=documents, title=case.title,
                    date=case.date, sides=sides)


def check_duplicate_paths(root: Path, documents: Iterable[tuple[str, str]], *, manifest: Path) -> None:
    """Refuse two documents that are one file (after ``..`` and symlinks).

    An error, not a warning: a document listed twice would count every claim twice
    and pair the file with itself, which skews every figure of the report silently.
    """
    first_of: dict[Path, str] = {}
    for doc_id, doc_path in documents:
        target = (root / doc_path).resolve()
        if target in first_of:
            raise CaseError(Errors.E023, path=manifest, first=first_of[target], second=doc_id)
        first_of[target] = doc_id


# --- what a case may make the tool read ----------------------------------------------


def resolve_document(case: CaseSpec, spec: DocumentSpec, *, allowed_roots: Iterable[str | Path] = ()) -> Path:
    """The file a document names, refused unless it lies inside the case folder or an allowed root.

    Resolved after symlinks and ``..``, so neither ``../../etc/passwd``, an absolute path nor a
    symlink inside the folder can make a case received from someone else copy a file of this
    machine into its report. ``allowed_roots`` are folders the *user* named (``--allow-root``,
    the folder of a batch manifest table), never folders a manifest names.
    """
    written = Path(spec.path)
    candidate = written if written.is_absolute() else case.root / written
    target = candidate.resolve()
    for root in (case.root, *allowed_roots):
        if target.is_relative_to(Path(root).resolve()):
            return target
    via = "" if target == candidate else f" (it resolves to {target})"
    raise CaseError(Errors.E018, path=candidate, via=via)


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


@contextmanager
def open_checked(path: Path, *, max_bytes: float) -> Iterator[tuple[int, int]]:
    """``(fd, size)`` of a regular file no larger than ``max_bytes``, checked on the open descriptor.

    Opened non-blocking (a FIFO would otherwise hang the open) and without following a last
    symlink (one swapped in after ``resolve_document``); type and size come from ``fstat`` of
    that descriptor, before any byte is read, so ``/dev/zero`` or a pipe is refused at once.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise CaseError(Errors.E004, path=path) from None
    except OSError as err:
        raise CaseError(Errors.E012, path=path, detail=err.strerror or str(err)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a plain file")
            raise CaseError(Errors.E019, path=path, kind=kind)
        if info.st_size > max_bytes:
            raise CaseError(Errors.E009, path=path, size_mb=info.st_size / 1024 / 1024, limit_mb=max_bytes / 1024 / 1024)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        yield fd, info.st_size
    finally:
        os.close(fd)


def iter_checked(path: Path, *, max_bytes: float, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The bytes of a checked file in chunks; a file that grows past ``max_bytes`` while read is refused."""
    with open_checked(path, max_bytes=max_bytes) as (fd, _):
        total = 0
        while True:
            data = os.read(fd, chunk)
            if not data:
                return
            total += len(data)
            if total > max_bytes:
                raise CaseError(Errors.E009, path=path, size_mb=total / 1024 / 1024, limit_mb=max_bytes / 1024 / 1024)
            yield data


def read_checked(path: Path, *, max_bytes: float) -> bytes:
    """All bytes of a regular file no larger than ``max_bytes`` (see ``open_checked``)."""
    return b"".join(iter_checked(path, max_bytes=max_bytes))


def check_nesting(text: str, *, path: Path | str, what: str, toml: bool = False, limit: int = MAX_NESTING) -> None:
    """Refuse JSON or TOML nested deeper than ``limit`` before a recursive parser sees it.

    A loop over the characters (strings and comments skipped), so the check itself cannot
    overflow the stack that ``json.loads``/``tomllib`` would.
    """
    depth, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "[{":
            depth += 1
            if depth > limit:
                raise CaseError(Errors.E021, path=path, what=what, limit=limit)
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "#" and toml:
            i = text.find("\n", i)
            if i < 0:
                return
        elif ch == '"' or (ch == "'" and toml):
            triple = toml and text.startswith(ch * 3, i)
            quote = ch * 3 if triple else ch
            j = i + len(quote)
            while j < n:
                if text[j] == "\\" and ch == '"':
                    j += 2
                    continue
                if text.startswith(quote, j):
                    break
                if text[j] == "\n" and not triple:
                    break  # unterminated: the parser will say so
                j += 1
            i = j + len(quote) - 1
        i += 1


def document_format(spec: DocumentSpec) -> str:
    """The reader to use: the manifest's ``format`` or the file extension."""
    key = (spec.format or Path(spec.path).suffix.lstrip(".") or "txt").lower()
    if key not in FORMATS:
        raise CaseError(Errors.E011, path=spec.path, fmt=key)
    return FORMATS[key]
