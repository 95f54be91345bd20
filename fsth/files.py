"""Writing output files so that a crash or Ctrl-C never leaves a half-written file under the final name."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from fsth.errors import InputError


def temp_beside(path: Path) -> tuple[int, str]:
    """A new temp file (fd, name) in ``path``'s directory, with the permissions a new file would get there."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; outputs should be as readable as any other file
    return fd, tmp


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in ``path``'s directory for the caller to write; on success it is fsynced and renamed
    to ``path``, on an exception it is removed and ``path`` is left as it was.

    For writers that want a file name (safetensors, ffmpeg); ``atomic_write`` is the file-object form. A
    missing output directory is an ``InputError``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: output directory {path.parent} does not exist")
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(binary_file)`` on a temp file in ``path``'s directory, then rename it to ``path``.

    If ``write`` raises, the temp file is removed and ``path`` is left as it was. A missing output directory
    is an ``InputError``.
    """
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(path)
