"""Shared fixtures. Hub look-ups are switched off: every model here is local."""

from __future__ import annotations

import os

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HANOI = REPO / "corpora" / "hanoi-2019"
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"


@pytest.fixture(scope="session")
def run_config():
    from pipeline.config import RunConfig

    return RunConfig(classifier="none")


@pytest.fixture(scope="session")
def models(run_config):
    """spaCy + gazetteers + attribution + MiniLM, loaded once for the whole test session."""
    from pipeline.runner import Models

    return Models.cached(run_config)


@pytest.fixture(scope="session")
def nlp(models):
    return models.nlp


def write_case(root: Path, documents: dict[str, tuple[str, str, str | bytes]], *, sides: dict | None = None,
               case_id: str = "test-case", extra: str = "") -> Path:
    """A case folder: ``documents`` maps file name -> (doc id, side, content)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [f'id = "{case_id}"', extra]
    for name, (doc_id, side, content) in documents.items():
        lines += ["[[documents]]", f'id = "{doc_id}"', f'side = "{side}"', f'path = "{name}"']
        data = content.encode("utf-8") if isinstance(content, str) else content
        (root / name).write_bytes(data)
    for side, aliases in (sides or {}).items():
        lines += [f"[sides.{side}]", "aliases = [" + ", ".join(f'"{a}"' for a in aliases) + "]"]
    (root / "case.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
