"""Shared fixtures and the test markers' rules. Hub look-ups are switched off: every model here is local.

Markers (declared in pyproject's ``[tool.pytest.ini_options]``; the default run includes all):

* ``slow``: loads a real model (the spaCy pipeline, the MiniLM encoder or tokenizer, the pair
  classifier, the judge end to end) or trains one. Kept honest two ways: every test whose
  fixtures include one of :data:`MODEL_FIXTURES` is marked at collection, and a test that is not
  marked yet reads a real model's files fails (:class:`_ModelGuard`), naming the file, so a new
  test cannot slip a model load into ``pytest -m "not slow"``.
* ``browser``: drives headless Chromium through Playwright.
* ``ray``: starts a local Ray instance.
"""

from __future__ import annotations

import os

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import functools  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from pipeline.config import RunConfig  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HANOI = REPO / "corpora" / "hanoi-2019"
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"

# Fixtures that load a real model, here or in a test module: a test using any of them, directly
# or through another fixture, is ``slow``. A new model-loading fixture belongs in this set.
MODEL_FIXTURES = frozenset({
    "models",  # spaCy + gazetteers + attribution + MiniLM (conftest)
    "nlp",  # the spaCy pipeline (conftest; test_attribution's own)
    "untrained_version",  # test_classifier: a LoRA version over the MiniLM base
    "smoke_run",  # test_train: trains the smoke recipe
    "tiny_model",  # test_evaluate: a tiny BERT with the MiniLM tokenizer
})

# Packages whose data files are real models (the default spaCy pipeline and encoder; every pair
# classifier is built on that encoder): reading any of their non-code files is a model load.
MODEL_PACKAGES = (RunConfig.spacy_model, RunConfig.encoder)

pytest_plugins = ("pytester",)  # tests/test_markers.py runs throwaway sessions with this conftest


@pytest.fixture(scope="session")
def run_config():
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


# --- markers ----------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test whose fixture closure loads a real model."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


class _ModelGuard:
    """Fails a test not marked ``slow`` that reads a real model's files (PEP 578 audit hook on
    ``open``: it sees every route, ``spacy.load``, ``SentenceTransformer``, ``from_pretrained``,
    the CLI, without importing any of them). Worker processes a test spawns are not watched."""

    def __init__(self, roots: list[str]) -> None:
        self.roots = tuple(roots)
        self.watching = False
        self.reads: list[str] = []
        self.saved_cache = None

    @classmethod
    def for_packages(cls, names: tuple[str, ...]) -> "_ModelGuard":
        roots = []
        for name in names:
            spec = importlib.util.find_spec(name)  # locates the package without importing it
            for location in (spec.submodule_search_locations or []) if spec else []:
                roots += {os.path.join(location, ""), os.path.join(os.path.realpath(location), "")}
        return cls(roots)

    def audit(self, event: str, args: tuple) -> None:
        if not self.watching or event != "open" or not isinstance(args[0], (str, bytes)):
            return
        path = os.fsdecode(args[0])
        if path.startswith(self.roots) and not path.endswith((".py", ".pyc")):
            self.reads.append(path)

    def start(self) -> None:
        self.reads.clear()
        # models cached by an earlier slow test would load nothing here: an empty cache for the
        # test's duration keeps the check independent of which tests ran before
        runner = sys.modules.get("pipeline.runner")
        if runner is not None:
            self.saved_cache = runner._cached_models
            runner._cached_models = functools.lru_cache(maxsize=2)(self.saved_cache.__wrapped__)
        self.watching = True

    def stop(self) -> list[str]:
        """Stop watching; the model files read since :meth:`start`."""
        self.watching = False
        if self.saved_cache is not None:
            sys.modules["pipeline.runner"]._cached_models, self.saved_cache = self.saved_cache, None
        reads, self.reads = self.reads, []
        return reads


_GUARD = _ModelGuard.for_packages(MODEL_PACKAGES)
sys.addaudithook(_GUARD.audit)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from _guarded(item))


def _guarded(item: pytest.Item):
    if item.get_closest_marker("slow"):
        return (yield)
    _GUARD.start()
    try:
        result = yield
    finally:
        reads = _GUARD.stop()
    if reads:
        pytest.fail(f"{item.nodeid} loads a real model ({reads[0]}) but is not marked slow: mark it "
                    "@pytest.mark.slow, or add the fixture that loads it to MODEL_FIXTURES in tests/conftest.py",
                    pytrace=False)
    return result
