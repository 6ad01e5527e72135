"""The model registry: which trained pair-classifier versions exist and which is the default.

``models/registry.json``::

    {"default": "nli-2026-11-27",
     "history": ["nli-smoke", "nli-2026-11-27"],      # promotions, oldest first
     "versions": {"nli-2026-11-27": {"path": "nli-2026-11-27", "created": "...",
                                     "metrics": {...}, "promoted": true}}}

``divergence run`` uses ``default``; ``rollback`` re-promotes the previous entry of
``history``. Paths are relative to the models folder so the folder can be moved or
committed. Every write goes to a temp file in the same folder and is then
``os.replace``-d over the old one, so a crash never leaves a half-written registry.
``model_versions`` names the versions a run uses, from loaded models or probed from
its configuration (the one implementation behind ``Models.versions`` and batch
fingerprints).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import DEFAULT_MODELS_DIR, RunConfig
from .errors import DivergenceError, Errors, ModelError
from .files import atomic_write

REGISTRY_FILE = "registry.json"
CLASSIFIER_META = "divergence.json"  # what a pair-classifier version folder holds besides its adapter
JUDGE_META = "judge.json"  # a judge version folder's one file of weights


@dataclass
class VersionInfo:
    name: str
    path: str
    created: str
    metrics: dict[str, Any] = field(default_factory=dict)
    promoted: bool = False
    is_default: bool = False


def _models_dir(models_dir: str | Path | None) -> Path:
    return Path(models_dir) if models_dir is not None else DEFAULT_MODELS_DIR


def registry_path(models_dir: str | Path | None = None) -> Path:
    return _models_dir(models_dir) / REGISTRY_FILE


def load_registry(models_dir: str | Path | None = None) -> dict[str, Any]:
    """The registry as a dict; an empty one when the file does not exist yet."""
    path = registry_path(models_dir)
    if not path.exists():
        return {"default": None, "history": [], "versions": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(Errors.E054, path=path, detail=str(err)) from err
    if not isinstance(data, dict) or not isinstance(data.get("versions"), dict):
        raise ModelError(Errors.E054, path=path, detail='expected an object with "versions"')
    data.setdefault("default", None)
    data.setdefault("history", [])
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file beside ``path`` and rename it over ``path``."""
    atomic_write(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_registry(data: dict[str, Any], models_dir: str | Path | None = None) -> None:
    write_json_atomic(registry_path(models_dir), data)


def register_version(
    name: str,
    *,
    metrics: dict[str, Any],
    models_dir: str | Path | None = None,
    path: str | None = None,
) -> VersionInfo:
    """Add (or update) a version entry without promoting it."""
    data = load_registry(models_dir)
    entry = data["versions"].get(name, {})
    entry.update(
        {
            "path": path or name,
            "created": entry.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "metrics": metrics,
            "promoted": bool(entry.get("promoted", False)),
        }
    )
    data["versions"][name] = entry
    save_registry(data, models_dir)
    return _info(name, entry, data)


def _info(name: str, entry: dict[str, Any], data: dict[str, Any]) -> VersionInfo:
    return VersionInfo(
        name=name,
        path=entry.get("path", name),
        created=entry.get("created", ""),
        metrics=entry.get("metrics", {}),
        promoted=bool(entry.get("promoted", False)),
        is_default=data.get("default") == name,
    )


def list_versions(models_dir: str | Path | None = None) -> list[VersionInfo]:
    """All registered versions, oldest first."""
    data = load_registry(models_dir)
    infos = [_info(n, e, data) for n, e in data["versions"].items()]
    return sorted(infos, key=lambda v: (v.created, v.name))


def _require(data: dict[str, Any], name: str, models_dir: str | Path | None) -> dict[str, Any]:
    if name not in data["versions"]:
        known = ", ".join(sorted(data["versions"])) or "none"
        raise ModelError(Errors.E055, path=registry_path(models_dir), name=name, known=known)
    return data["versions"][name]


def promote(name: str, *, models_dir: str | Path | None = None) -> VersionInfo:
    """Make ``name`` the default; it is appended to the promotion history."""
    data = load_registry(models_dir)
    entry = _require(data, name, models_dir)
    folder = _models_dir(models_dir) / entry.get("path", name)
    if not folder.is_dir():
        raise ModelError(Errors.E053, path=folder, detail=f"version {name!r} has no folder")
    entry["promoted"] = True
    data["default"] = name
    if not data["history"] or data["history"][-1] != name:
        data["history"].append(name)
    save_registry(data, models_dir)
    return _info(name, entry, data)


def rollback(*, models_dir: str | Path | None = None) -> VersionInfo:
    """Drop the current default from the history and make the previous one default again."""
    data = load_registry(models_dir)
    history: list[str] = data["history"]
    if len(history) < 2:
        raise ModelError(Errors.E056, path=registry_path(models_dir), detail="fewer than two promotions in the history")
    demoted = history.pop()
    data["versions"].get(demoted, {})["promoted"] = False
    previous = history[-1]
    data["default"] = previous
    save_registry(data, models_dir)
    return _info(previous, data["versions"][previous], data)


def resolve_version(ref: str, *, models_dir: str | Path | None = None) -> tuple[str, Path] | None:
    """``"default"`` or a registered version name -> (name, folder); None if neither."""
    data = load_registry(models_dir)
    name = data.get("default") if ref == "default" else ref
    if not name:
        return None
    entry = data["versions"].get(name)
    if entry is None:
        folder = _models_dir(models_dir) / name
        return (name, folder) if ref != "default" and (folder / CLASSIFIER_META).is_file() else None
    return name, _models_dir(models_dir) / entry.get("path", name)


# --- divergence judges ----------------------------------------------------------------------
# ``registry.json`` also holds ``"judge": {"default": NAME, "versions": {NAME: {"path", "created",
# "metrics", "promoted"}}}``: judge versions (``pipeline.stages.judge``) are registered like pair
# classifiers, but apart, because a judge is trained on the classifier's outputs.


def register_judge(name: str, *, metrics: dict[str, Any], promote_it: bool,
                   models_dir: str | Path | None = None) -> VersionInfo:
    """Add (or update) a judge version; make it the default judge when ``promote_it``."""
    data = load_registry(models_dir)
    judges = data.setdefault("judge", {"default": None, "versions": {}})
    entry = judges["versions"].get(name, {})
    entry.update({"path": entry.get("path", name),
                  "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "metrics": metrics, "promoted": bool(entry.get("promoted")) or promote_it})
    judges["versions"][name] = entry
    if promote_it:
        judges["default"] = name
    save_registry(data, models_dir)
    return VersionInfo(name=name, path=entry["path"], created=entry["created"], metrics=metrics,
                       promoted=entry["promoted"], is_default=judges["default"] == name)


def default_judge(models_dir: str | Path | None = None) -> str | None:
    return (load_registry(models_dir).get("judge") or {}).get("default")


def resolve_judge(ref: str, *, models_dir: str | Path | None = None) -> Path | None:
    """``"default"``, a registered judge name, or a folder/file holding ``judge.json`` -> its path."""
    judges = load_registry(models_dir).get("judge") or {}
    name = judges.get("default") if ref == "default" else ref
    if not name:
        return None
    entry = (judges.get("versions") or {}).get(name)
    if entry is not None:
        return _models_dir(models_dir) / entry.get("path", name)
    path = Path(ref)
    if (path / JUDGE_META).is_file() or (path.is_file() and path.suffix == ".json"):
        return path
    folder = _models_dir(models_dir) / name
    return folder if (folder / JUDGE_META).is_file() else None


# --- the versions a run uses ------------------------------------------------------------------


def model_versions(config: RunConfig, *, spacy_meta: dict[str, Any] | None = None, encoder: str | None = None,
                   classifier: str | None = None, judge: str | None = None) -> dict[str, str]:
    """The model versions that decide a report: ``report.json``'s ``models`` and part of each
    batch case's fingerprint.

    Loaded models (``runner.Models.versions``) pass what they loaded. What is not passed is
    probed from ``config`` without loading any weights (package metadata, the registry, a
    judge's small JSON file), resolved the way ``Models.load`` resolves it, so a batch driver
    decides which cases are unchanged without starting a worker or loading a model.
    """
    import spacy

    from . import __version__

    meta = spacy_meta if spacy_meta is not None else _probe_spacy_meta(config.spacy_model)
    if classifier is None:
        classifier = _probe_classifier(config)
    return {
        "divergence": __version__,
        "spacy": spacy.__version__,
        "spacy_model": f"{meta.get('lang')}_{meta.get('name')}-{meta.get('version')}",
        "encoder": encoder if encoder is not None else config.encoder,
        "classifier": classifier,
        "judge": judge if judge is not None else _probe_judge(config, classifier),
    }


def _probe_spacy_meta(ref: str) -> dict[str, Any]:
    from spacy import util as spacy_util

    try:
        if Path(ref).expanduser().exists():
            return spacy_util.get_model_meta(Path(ref).expanduser())
        if spacy_util.is_package(ref):
            return spacy_util.get_model_meta(spacy_util.get_package_path(ref))
    except (OSError, ValueError):
        pass
    return {"lang": "?", "name": ref, "version": "?"}


def _probe_classifier(config: RunConfig) -> str:
    """The pair-classifier version ``Models.load`` would report (``PairClassifier.load``'s naming)."""
    ref = config.classifier
    if ref.lower() == "none":
        return "none"
    try:
        found = resolve_version(ref, models_dir=Path(config.models_dir))
    except DivergenceError:
        found = None
    if found is not None:
        return found[0]
    if ref == "default":
        return "none"  # Models.load warns (W003) and runs without a classifier
    if (Path(ref).expanduser() / CLASSIFIER_META).is_file():
        return Path(ref).expanduser().name
    return ref


def _probe_judge(config: RunConfig, classifier: str) -> str:
    """The judge version ``Models.load`` would report, reading only its small JSON file."""
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


def resolve_model_path(ref: str) -> str:
    """A folder for ``ref``: a path, or an installed package exposing ``get_model_path()``."""
    if Path(ref).expanduser().exists():
        return str(Path(ref).expanduser())
    module_name = ref.replace("-", "_")
    if module_name.isidentifier():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if module is not None and hasattr(module, "get_model_path"):
            return str(module.get_model_path())
    return ref  # a hub id: the library downloads it (online users only)
