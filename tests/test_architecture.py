"""The rooms of the package and which may use which (README, "Architecture").

Read from the source, not by importing it: an import inside a function counts as much as
one at the top, because a run that reaches it pays for it. The command modules are the one
exception: every command is registered when the CLI starts, so their module level must stay
light, and they import the heavy rooms inside the command functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"

# room -> the rooms its modules may import (besides itself)
ROOMS: dict[str, set[str]] = {
    "core": set(),
    "stages": {"core"},
    "run": {"core", "stages"},
    "review": {"core", "run"},
    "batch": {"core", "stages", "run"},  # fingerprints read the stages' data files
    "datasets": {"core", "stages"},
    "scoring": {"core", "stages", "run", "datasets"},
    "training": {"core", "stages", "run", "datasets", "scoring"},
    "commands": {"core", "stages", "run", "review", "batch", "datasets", "scoring", "training"},
}
RUN_MODULES = {"models", "runner", "render"}
SUBPACKAGES = {"stages", "review", "batch", "datasets", "scoring", "training", "commands"}
HEAVY_FOR_COMMANDS = {"datasets", "scoring", "training", "review", "batch"}


def room_of(module: str) -> str:
    """``pipeline.stages.align`` -> stages; ``pipeline.runner`` -> run; ``pipeline.errors`` -> core."""
    parts = module.split(".")
    if len(parts) == 1:
        return "core"
    if parts[1] in SUBPACKAGES:
        return parts[1]
    if parts[1] == "cli":
        return "commands"
    return "run" if parts[1] in RUN_MODULES else "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool = False, module: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of a ``pipeline`` module in ``path``
    (``module``: the file's dotted name, when it is not under the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            for name in names:  # `from . import stages` names a module; `from .x import y` a module x
                where = PACKAGE.parent / name.replace(".", "/")
                imported = name if where.with_suffix(".py").exists() or where.is_dir() else target
                if imported.split(".")[0] == "pipeline":
                    found.append((node.lineno, imported))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "pipeline"]
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_room_uses_only_the_rooms_below_it(path: Path) -> None:
    room = room_of(module_name(path))
    allowed = ROOMS[room] | {room}
    wrong = [f"line {line}: {target} ({room_of(target)})" for line, target in imports(path)
             if room_of(target) not in allowed]
    assert not wrong, f"{path.relative_to(PACKAGE)} ({room}) may use {sorted(allowed)} only: {wrong}"


def test_commands_import_heavy_rooms_only_inside_the_command() -> None:
    # `divergence run` loads every command module; what they import at module level, a run pays for
    for path in sorted((PACKAGE / "commands").glob("*.py")) + [PACKAGE / "cli.py"]:
        heavy = [target for _, target in imports(path, top_level_only=True) if room_of(target) in HEAVY_FOR_COMMANDS]
        assert not heavy, f"{path.name} imports {heavy} at module level"


def test_the_rule_catches_a_lazy_import_of_training_in_a_stage(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text("import json\n\ndef f():\n    from ..training import judge\n    from ..errors import Errors\n",
                   encoding="utf-8")
    found = imports(bad, module="pipeline.stages.probe")
    assert found == [(4, "pipeline.training.judge"), (5, "pipeline.errors")]
    assert room_of(found[0][1]) not in ROOMS["stages"]
