"""Writing output files so that a crash or Ctrl-C never leaves a half-written file under the final name."""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

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


# -- outputs checked before the work ----------------------------------------------------------------------


def given_file(path: str | os.PathLike | None, option: str) -> str | None:
    """A file an option names, as a string (None if not given); ``InputError`` naming the option if it is missing."""
    if path is not None and not Path(path).is_file():
        raise InputError(f"{option} {path}: no such file")
    return str(path) if path is not None else None


def check_writable(path: str | os.PathLike, option: str, *, directory: bool = False) -> Path:
    """Refuse, before any work, an output that could not be written at the end: ``path`` is a file to create or
    replace (``directory``: a directory to create or write into). Its nearest existing ancestor must be a
    directory in which a file can really be created (tried: permissions say nothing for root under /sys or
    /proc); a file to write must not be an existing directory, a directory not an existing file."""
    path = Path(path)
    if directory and path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: is a file, not a directory")
    if not directory and path.is_dir():
        raise InputError(f"{option} {path}: is a directory; name the file to write")
    where = path if directory else path.parent
    where = Path(os.path.abspath(where))
    while not os.path.lexists(where) and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise InputError(f"{option} {path}: {where} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".fsth-write-test.", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = "it takes no new files" if exc.errno == errno.ENOENT else exc.strerror or str(exc)  # /proc: ENOENT
        raise InputError(f"{option} {path}: cannot write in {where} ({reason})") from None
    return path


def refuse_inputs(path: str | os.PathLike, inputs: Iterable, option: str) -> Path:
    """Refuse an output that is one of the command's inputs (``--force`` or not), compared after resolving
    ``..`` and symbolic links; ``inputs`` may hold None and non-paths (a camera index), which are skipped."""
    path = Path(path)
    target = os.path.realpath(path)
    for other in inputs:
        if isinstance(other, (str, os.PathLike)) and str(other) and os.path.realpath(other) == target:
            raise InputError(f"{option} {path}: would overwrite an input ({other}); write to another file")
    return path


def check_output_file(
    path: str | os.PathLike,
    force: bool = False,
    *,
    suffixes: str | tuple[str, ...],
    kind: str,
    inputs: Iterable = (),
    option: str = "-o",
) -> Path:
    """An output file checked before the long work: named with one of ``suffixes`` (``kind`` says why), never one
    of ``inputs`` (``force`` or not: ``refuse_inputs``), in an existing directory where a file can be created
    (``check_writable``), not an existing file unless ``force``. Returns it as a ``Path``."""
    path = Path(path)
    suffixes = (suffixes,) if isinstance(suffixes, str) else tuple(suffixes)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{option} {path}: {kind}; name it {suffixes[0]}")
    refuse_inputs(path, inputs, option)
    check_writable(path, option)  # also names a directory, /sys, a file where a directory should be
    if not path.parent.is_dir():
        raise InputError(f"{option} {path}: output directory {path.parent} does not exist")
    if path.exists() and not force:
        raise InputError(f"{path} already exists; use --force to overwrite it")
    return path


def parse_with_out_dir(parser, default: Path):
    """An example's command line: ``parser`` plus ``--out DIR`` (default ``default``) and ``--force``, parsed; the
    arguments and ``--out`` made a fresh directory (``fresh_output_dir``), or one ``error:`` line and exit 1."""
    import sys

    parser.add_argument("--out", type=Path, default=default, help=f"where to write (default: {default})")
    parser.add_argument("--force", action="store_true", help="delete what --out holds and run again")
    args = parser.parse_args()
    try:
        return args, fresh_output_dir(args.out, args.force)
    except InputError as exc:
        sys.exit(f"error: {exc}")


def fresh_output_dir(path: str | os.PathLike, force: bool = False) -> Path:
    """A directory for a script to fill from scratch (the examples): created if missing; one that holds anything
    is refused (``InputError``) unless ``force``, which empties it first. Nothing is deleted without ``force``."""
    import shutil

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise InputError(
                f"{path} already holds files (an earlier run, or yours); --force deletes them and "
                "runs again, --out DIR writes elsewhere"
            )
        shutil.rmtree(path)
    check_writable(path, "--out", directory=True)
    path.mkdir(parents=True, exist_ok=True)
    return path
