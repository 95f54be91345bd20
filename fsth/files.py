"""Writing output files so that a crash, Ctrl-C, SIGTERM or SIGHUP never leaves a half-written file under the final
name, and an output that appears while a command runs is never replaced without ``--force``.

Every output is written to a temp file beside it (``temp_beside``: a name that fits in 255 bytes) and moved into
place by ``commit``: mode by the umask, fsync, then a rename, or a hard link (exclusive: it fails if the name
exists) for an output that ``claim`` recorded as new. ``check_output_file`` / ``check_writable`` check an output
before the work, a name too long for the file system included.
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from fsth.errors import InputError

NAME_MAX = 255  # bytes in one file name on the common file systems (ext4, xfs, btrfs, tmpfs, APFS, NTFS)
_TEMP_EXTRA = len("..") + 8 + len(".partial")  # ".NAME." + mkstemp's 8 random characters + ".partial"

# Outputs checked absent without --force (``claim``): ``commit`` creates them exclusively.
_NEW_OUTPUTS: set[str] = set()


def _shortened(name: str, room: int) -> str:
    """``name`` cut to at most ``room`` bytes (in the file system's encoding)."""
    raw = os.fsencode(name)
    return name if len(raw) <= room else os.fsdecode(raw[:room])


def temp_beside(path: Path) -> tuple[int, str]:
    """A new temp file (fd, name) in ``path``'s directory: ``.NAME.xxxxxxxx.partial``, NAME shortened so that the
    whole fits in ``NAME_MAX`` bytes."""
    prefix = f".{_shortened(path.name, NAME_MAX - _TEMP_EXTRA)}."
    return tempfile.mkstemp(prefix=prefix, suffix=".partial", dir=path.parent)


def claim(path: str | os.PathLike, force: bool) -> None:
    """Record, at the check before the work, whether ``path`` may be replaced at the end: without ``force`` it is
    created exclusively by ``commit`` (an output that appeared meanwhile is kept); with ``force`` it is replaced."""
    key = os.path.abspath(path)
    if force:
        _NEW_OUTPUTS.discard(key)
    else:
        _NEW_OUTPUTS.add(key)


def commit(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move the finished temp file ``tmp`` to ``path``: mode by the umask (mkstemp and safetensors' ``save_file``
    leave 0600), fsync, then a rename; for an output ``claim`` recorded as new, a hard link that fails if ``path``
    appeared meanwhile (another program, a second run): then ``tmp`` is removed, ``path`` kept as it is, and an
    ``InputError`` says so. A file system without hard links gets a re-check right before the rename."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    key = os.path.abspath(path)
    if key not in _NEW_OUTPUTS:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except OSError as exc:
        no_links = exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV)
        if no_links and not os.path.lexists(path):  # vfat, some FUSE: the re-check, then the rename
            os.replace(tmp, path)
        elif no_links or exc.errno == errno.EEXIST:
            Path(tmp).unlink(missing_ok=True)
            raise InputError(
                f"{path} appeared while this command ran (another program or run wrote it); it was kept and this "
                "run's output dropped: run again with --force to replace it"
            ) from None
        else:
            raise
    Path(tmp).unlink(missing_ok=True)
    _NEW_OUTPUTS.discard(key)


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in ``path``'s directory for the caller to write; on success it is moved to ``path``
    (``commit``), on an exception (SIGTERM and SIGHUP too: ``fsth.errors.signals_as_interrupts``) it is removed
    and ``path`` is left as it was.

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
        commit(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a write to a file object names no file
            exc.filename = str(path)
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


def check_name_length(path: str | os.PathLike, option: str) -> Path:
    """Refuse a path with a part longer than ``NAME_MAX`` bytes (no file system takes it), naming the option."""
    path = Path(path)
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise InputError(
                f"{option} {part[:24]}...{part[-12:]}: a name of {len(os.fsencode(part))} bytes, longer than the "
                f"{NAME_MAX} a file system allows; use a shorter name"
            )
    return path


def check_writable(path: str | os.PathLike, option: str, *, directory: bool = False) -> Path:
    """Refuse, before any work, an output that could not be written at the end: ``path`` is a file to create or
    replace (``directory``: a directory to create or write into). Its nearest existing ancestor must be a
    directory in which a file can really be created (tried: permissions say nothing for root under /sys or
    /proc); a file to write must not be an existing directory, a directory not an existing file; no part of its
    name may be longer than ``NAME_MAX`` bytes."""
    path = check_name_length(path, option)
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
    if path.name.lower() in suffixes:  # "out/.mp4": a hidden file without a suffix, to Python
        raise InputError(f"{option} {path}: the name has nothing before {path.name}; name it like NAME{path.name}")
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{option} {path}: {kind}; name it {suffixes[0]}")
    refuse_inputs(path, inputs, option)
    check_writable(path, option)  # also names a directory, /sys, a file where a directory should be
    if not path.parent.is_dir():
        raise InputError(f"{option} {path}: output directory {path.parent} does not exist")
    if path.exists() and not force:
        raise InputError(f"{path} already exists; use --force to overwrite it")
    claim(path, force)
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
