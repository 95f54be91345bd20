"""Writing output files so that a crash or Ctrl-C never leaves a half-written file under the final name."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from fsth.errors import InputError


def temp_beside(path: Path) -> tuple[int, str]:
    """A new temp file (fd, name) in ``path``'s directory, with the permissions a new file would get there."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; outputs should be as readable as any other file
    return fd, tmp


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(binary_file)`` on a temp file in ``path``'s directory, then rename it to ``path``.

    If ``write`` raises, the temp file is removed and ``path`` is left as it was. A missing output directory
    is an ``InputError``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: output directory {path.parent} does not exist")
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
