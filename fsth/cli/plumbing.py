"""The command line's plumbing, under the commands of ``fsth.cli``: usage errors and every other problem as one
``error:`` line with its exit code (``OneLineErrors``, ``handled``, ``os_error_exit_code``), a closed stdout
named (``closed_stdout_named``), and the options built from the option dataclasses' field metadata
(``with_options``, from ``fsth.config.option``), so that no default is written twice.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import functools
import inspect
import io
import math
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
import typer.core

from fsth import console
from fsth.errors import FsthError, Terminated, os_error_line, signals_as_interrupts


class OneLineErrors(typer.core.TyperGroup):
    """Usage errors (a bad option value, a missing argument) as one ``error:`` line too, like every other problem
    with the user's input, with the command's --help named; not typer's usage text and boxed panel."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            with signals_as_interrupts():
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                if sys.stdout is not None:
                    sys.stdout.flush()  # a full stdout (`> /dev/full`) fails here, not in the interpreter's exit
        except OSError as exc:  # --version, --help or the last flush; the commands' own are handled in command()
            sys.exit(os_error_exit_code(exc))
        except _USAGE_ERRORS as exc:
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError":  # plain `fsth`: the help, as --help shows it
                typer.echo(ctx.get_help())
                sys.exit(exc.exit_code)
            message = " ".join(exc.format_message().split()).rstrip(".")
            # typer names an option's environment variable whether or not it is set: only blame it where it is
            message = re.sub(
                r" \(env var: '(\w+)'\)", lambda m: m.group(0) if os.environ.get(m.group(1)) else "", message
            )
            where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            console.error(f"{message}{where}")
            sys.exit(exc.exit_code)
        except typer.Abort:
            console.error("interrupted")
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


try:
    _USAGE_ERRORS: tuple[type[Exception], ...] = (typer.TyperException,)  # typer's own click (typer >= 0.2x)
except AttributeError:  # an older typer over click
    import click

    _USAGE_ERRORS = (click.ClickException,)


def handled(func: Callable) -> Callable:
    """``func`` with its ``FsthError``s as one stderr line and the error's exit code, Ctrl-C / SIGTERM / SIGHUP as
    "interrupted" / "terminated by ..." and 128 + the signal, and an ``OSError`` the machine caused as one line."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FsthError as exc:
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM and SIGHUP as Terminated (signals_as_interrupts)
            signum = exc.signum if isinstance(exc, Terminated) else 2
            console.error("interrupted" if signum == 2 else f"terminated by {exc}")
            raise typer.Exit(128 + signum) from None
        except OSError as exc:
            raise typer.Exit(os_error_exit_code(exc)) from None

    return wrapper


def os_error_exit_code(exc: OSError) -> int:
    """An ``OSError`` the machine caused as one ``error:`` line (``fsth.errors.os_error_line``) and exit code 1;
    a reader of stdout that stopped (`fsth landmarks x.mp4 | head -1`) as a quiet exit 0; any other is re-raised
    (a bug: its traceback). Stdout is pointed at /dev/null once it failed, so the interpreter's final flush of
    what it still holds does not fail again."""
    line = None if exc.errno == errno.EPIPE else os_error_line(exc)
    if line is None and exc.errno != errno.EPIPE:
        raise exc
    if exc.errno == errno.EPIPE or exc.filename is None:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
    if line is None:
        return 0
    console.error(line)
    return 1


def ignore_further_interrupts() -> None:
    """A command that is ending on Ctrl-C or SIGTERM ignores further ones, so that they cannot cut short its exit
    (a default SIGTERM would end it unreported; a KeyboardInterrupt in the interpreter's exit, with a traceback)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


class _ClosedStdout(io.TextIOBase):
    """``sys.stdout`` when the shell closed it (``>&-``): writing is an ``OSError`` (EBADF) naming no file, which
    ``fsth.errors.os_error_line`` calls standard output."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def closed_stdout_named() -> None:
    """With stdout closed (``>&-``), /dev/null takes file descriptor 1 (else the next file opened would get it, and
    data meant for stdout would go into an output file) and ``sys.stdout`` becomes a ``_ClosedStdout``."""
    try:
        os.fstat(1)
        if sys.stdout is not None:
            return
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)
        if fd != 1:
            os.dup2(fd, 1)
            os.close(fd)
    sys.stdout = _ClosedStdout()


def between(low: float, high: float) -> Callable[[Optional[float]], Optional[float]]:
    """Option callback for a float option: a finite number in [low, high] (typer's min=/max= let NaN through and
    would call NaN "not <= high"); the range is stated in the option's help."""

    def check(value: Optional[float]) -> Optional[float]:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise typer.BadParameter(f"must be a finite number from {low:g} to {high:g}, not {value:g}")
        return value

    return check


# ------------------------------------------------------------------------------------ options from dataclasses


def choices(name: str, values) -> type[enum.Enum]:
    """A str enum of ``values``, a choice option's type (``--help`` shows them as <a|b|c>)."""
    return enum.Enum(name, [(value, value) for value in values], type=str)


_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "Path": Path}


def _field_option(field: dataclasses.Field) -> tuple[type, typer.models.OptionInfo]:
    """The option type and Typer option of a dataclass field declared with ``fsth.config.option``, from its metadata:
    the help with the default stated as "(default: X)"; the range as typer's min/max for an integer, ``between``
    for a float (whose help states the range); choices as an enum; ``parse`` as a callback. Its Typer default is
    None (not given): the field's own default applies (or, for ``train``, the preset's or the resumed run's)."""
    meta, default = field.metadata, field.default
    kind = meta.get("kind") or _TYPES[str(field.type).replace(" | None", "").split(" | ")[0]]
    if "choices" in meta:
        kind = choices(f"{field.name}_choice", meta["choices"])
    shown = meta.get("shown", ("on" if default else "off") if isinstance(default, bool) else default)
    help_ = meta["help"] if shown is None else f"{meta['help']} (default: {shown})"
    flag = "--" + field.name.lower().replace("_", "-")
    flags = meta.get("flags") or ((f"{flag}/--no-{flag[2:]}",) if kind is bool else (flag,))
    kwargs = {"rich_help_panel": meta.get("panel"), "metavar": meta.get("metavar")}
    low, high = meta.get("low"), meta.get("high")
    if kind is float and (low, high) != (None, None):
        kwargs["callback"] = between(-math.inf if low is None else low, math.inf if high is None else high)
    elif low is not None or high is not None:
        kwargs.update(min=low, max=high)
    if "parse" in meta:
        kwargs["callback"] = _parsed(meta["parse"])
    return Optional[kind], typer.Option(*flags, help=help_, show_default=False, **kwargs)


def _parsed(parse: Callable) -> Callable:
    def check(value):
        try:
            return None if value is None else parse(value)
        except FsthError as exc:
            raise typer.BadParameter(str(exc)) from None

    return check


def _given(value):
    return value.value if isinstance(value, enum.Enum) else value


def with_options(skip: tuple[str, ...] = (), **classes: type) -> Callable[[Callable], Callable]:
    """Give a command, after its own parameters, one option per ``option`` field (``fsth.config.option``) of each
    dataclass in ``classes`` (parameter name -> class); the command is called with that parameter set to the class
    built from the options given (the fields' own defaults for the rest: no default is written twice). A parameter
    annotated ``dict`` instead gets the given values alone (``train``: a resumed run keeps its own). ``skip``: fields
    that are not options of this command. A bad value is a usage error (exit 2), as typer's own are."""

    def wrap(func: Callable) -> Callable:
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name not in classes]
        owner, added = {}, []
        for param, cls in classes.items():
            for field in dataclasses.fields(cls):
                if "help" in field.metadata and field.name not in skip:
                    kind, info = _field_option(field)
                    added.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                                   annotation=Annotated[kind, info]))  # fmt: skip
                    owner[field.name] = param

        @functools.wraps(func)
        def run(**kwargs):
            given = {param: {} for param in classes}
            for name, param in owner.items():
                if (value := kwargs.pop(name)) is not None:
                    given[param][name] = _given(value)
            try:
                for param, cls in classes.items():
                    wants_dict = signature.parameters[param].annotation is dict
                    kwargs[param] = given[param] if wants_dict else cls(**given[param])
            except FsthError as exc:
                exc.exit_code = 2
                raise
            return func(**kwargs)

        run.__signature__ = signature.replace(parameters=own + added)
        return run

    return wrap
