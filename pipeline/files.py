"""Atomic file and folder replacement: the one implementation every writer uses.

A reader (a browser, a batch rerun, a second reviewer, a loader of the model registry)
must see the old file or the new one, never half of one: write to a temp file in the
same folder, fsync, then ``os.replace``. Folders (a model version, a ``datasets``
export) are filled under a temporary sibling name and then renamed into place.
Kept free of heavy imports so light commands stay fast.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: done once, not while threads write
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _shared(path: Path, *, folder: bool = False) -> None:
    # mkstemp/mkdtemp (and safetensors) create 0600/0700; outputs are meant to be shared
    os.chmod(path, (0o777 if folder else 0o666) & ~_UMASK)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def replace_file(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Run ``write(tmp)`` on a temp file beside ``path``, then move it over ``path`` in one step.

    For writers that want a path rather than bytes (pandas, ONNX export). The temp
    file is removed if ``write`` fails, so a failed write leaves the old file as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        _fsync(tmp)
        _shared(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically, with the usual 0644-minus-umask mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:  # written and synced through the one handle
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        _shared(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def publish_dir(staging: str | Path, target: str | Path, *, overwrite: bool = True) -> Path:
    """Move the filled folder ``staging`` to ``target`` (same file system), its files made shareable.

    An existing ``target`` is renamed aside first and deleted after, so readers see the
    old folder or the new one, never a mix (between the two renames ``target`` is briefly
    absent); with ``overwrite=False`` it raises ``FileExistsError`` instead.
    """
    staging, target = Path(staging), Path(target)
    for root, dirs, files in os.walk(staging):
        for name in files:
            _shared(Path(root) / name)
        for name in dirs:
            _shared(Path(root) / name, folder=True)
    _shared(staging, folder=True)
    if not target.exists():
        os.replace(staging, target)
        return target
    if not overwrite:
        raise FileExistsError(f"{target} already exists")
    if not target.is_dir():
        raise NotADirectoryError(f"{target} is a file, not a folder")
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    os.replace(target, old)  # renaming onto an empty folder is allowed
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def replace_dir(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Run ``write(tmp)`` on a fresh folder beside ``path``, then swap it in (``publish_dir``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        write(tmp)
        return publish_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


__all__ = ["atomic_write", "publish_dir", "replace_dir", "replace_file"]
