"""Output paths: checked writable before any work starts, written atomically.

:func:`check_file` and :func:`check_folder` run at the start of a command, so that a bad
``--json`` or ``--out`` is one line before the compute, not an error after it.  They create
nothing.  :func:`atomic_open` writes to a temporary file beside the target and renames it into
place (atomic on POSIX); on any failure, Ctrl-C included, the temporary file is removed, so a
target is either the old file, the complete new one, or absent.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def _file_mode() -> int:
    """The mode ``open`` would give a new file (mkstemp's is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()

def _existing_ancestor(path: Path) -> Path:
    """The nearest existing folder-or-file at or above ``path``'s parent."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    return parent


def _probe(folder: Path, option: str, path: Path) -> None:
    """Create and remove a temporary file in ``folder``: the one sure test of writability."""
    if not folder.is_dir():
        raise ValueError(f"{option} {path}: {folder} is not a folder, so nothing can be "
                         "written below it")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot write in {folder} ({exc.strerror})") from None


def check_file(path: str | Path | None, option: str) -> None:
    """Raise a one-line ValueError unless a file can be written at ``path`` (None: no output)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; expected a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{option} {path}: the file exists and is not writable")
    _probe(_existing_ancestor(path), option, path)


def check_folder(path: str | Path, option: str) -> None:
    """Raise a one-line ValueError unless ``path`` is, or can be created as, a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: is a file; expected a folder")
    _probe(path if path.is_dir() else _existing_ancestor(path), option, path)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` on success,
    remove it on failure.  ``mode`` is "w" (text) or "wb"."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
