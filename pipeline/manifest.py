"""Reading and validating ``case.toml`` (CONTRACTS §1).

pydantic does the validation so every problem is reported with the field path
("documents[2].side: field required"); the result is the plain ``CaseSpec``
dataclass the rest of the pipeline uses.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import CaseError, Errors
from .schema import NON_PARTY_SIDES, CaseSpec, DocumentSpec, SideSpec

MANIFEST_NAME = "case.toml"
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
    if not path.is_file():
        raise CaseError(Errors.E001, path=root)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CaseError(Errors.E002, path=path, detail=str(err).splitlines()[0]) from None
    try:
        case = _Case.model_validate(raw)
    except ValidationError as err:
        raise CaseError(Errors.E003, path=path, detail=_first_error(err)) from None

    seen: set[str] = set()
    for doc in case.documents:
        if doc.id in seen:
            raise CaseError(Errors.E005, path=path, doc_id=doc.id)
        seen.add(doc.id)
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
    return CaseSpec(id=case.id, root=root.resolve(), documents=documents, title=case.title,
                    date=case.date, sides=sides)


def document_format(spec: DocumentSpec) -> str:
    """The reader to use: the manifest's ``format`` or the file extension."""
    key = (spec.format or Path(spec.path).suffix.lstrip(".") or "txt").lower()
    if key not in FORMATS:
        raise CaseError(Errors.E011, path=spec.path, fmt=key)
    return FORMATS[key]
