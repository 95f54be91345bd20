"""Errors a user can act on.

Every problem caused by the user's input (a missing file, a photo without a face, a corrupt video, a
checkpoint of the wrong kind) is raised as an :class:`FsthError` with a one-line message that names the
thing and the problem. The CLI prints that line on stderr and exits non-zero, without a traceback.
Anything else escaping a command is a bug in fsth and keeps its traceback, except an ``OSError`` the machine
caused (``os_error_line``: a full disk, a closed stdout). SIGTERM and SIGHUP end a command as Ctrl-C does
(``signals_as_interrupts``).
"""

from __future__ import annotations

import errno
import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class FsthError(Exception):
    """A problem with the user's input or environment, described in one line."""

    exit_code = 1


class InputError(FsthError):
    """A file that is missing, unreadable, or not what the command needs."""


class NoFaceError(InputError):
    """An image or video in which no face was found."""


class CheckpointError(FsthError):
    """A checkpoint that is missing, corrupt, of the wrong kind/version, or does not match its config."""


class MissingWeightsError(FsthError):
    """Pretrained weights (landmark network, VGG, Inception ...) that are not on disk and cannot be fetched."""


class ConfigError(FsthError):
    """A model or training configuration that is invalid (unknown preset, missing or unknown field ...)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``timeout``, ``docker stop``, a closed terminal), raised where Ctrl-C's KeyboardInterrupt
    would be, so that every cleanup Ctrl-C runs (temp files removed, workers ended) runs for them too."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """While active, SIGTERM and SIGHUP raise ``Terminated`` in the main thread (the old handlers come back after,
    unless a command that is ending set them to be ignored). Commands that stop more gently on SIGTERM (``fsth
    train``) install their own handlers inside it."""

    def raise_terminated(signum, frame):
        raise Terminated(signum)

    if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread only
        yield
        return
    sigs = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    old = {sig: signal.signal(sig, raise_terminated) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            if signal.getsignal(sig) is raise_terminated:  # not where a command chose to ignore it as it ends
                signal.signal(sig, handler)


# errno -> what the user can do; an OSError with another errno escaping a command is a bug (traceback)
_MACHINE_ERRORS = {
    "ENOSPC": "no space left on device: free some space (or write elsewhere) and run again",
    "EDQUOT": "disk quota exceeded: free some space (or write elsewhere) and run again",
    "EFBIG": "file too large for this file system",
    "ENAMETOOLONG": "file name too long: use a shorter name",
    "EROFS": "read-only file system: write elsewhere",
    "EIO": "input/output error (a failing disk, or a network mount that went away)",
    "EBADF": "it is closed (`>&-`): redirect it to a file or /dev/null instead",
}


def os_error_line(exc: OSError) -> str | None:
    """One line for an ``OSError`` that the machine caused, not fsth (a full disk, a name too long, a read-only or
    failing disk, a closed stdout), naming the file (``standard output`` when the error carries no file name:
    fsth's own file writers always name theirs); None for any other ``OSError``."""
    names = [name for name in _MACHINE_ERRORS if getattr(errno, name, None) == exc.errno]
    if not names:
        return None
    what = exc.filename if exc.filename is not None else "standard output"
    return f"{what}: {_MACHINE_ERRORS[names[0]]}"
