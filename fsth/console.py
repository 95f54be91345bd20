"""Talking to the user: everything here goes to stderr, so stdout stays free for data.

``log``/``warn``/``debug`` respect the global verbosity (``fsth -q`` / ``fsth -v``); ``progress()``
returns a rich progress bar on stderr that disappears when quiet or when stderr is not a terminal
and the work is short.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

err = Console(stderr=True, highlight=False)

# 0 = quiet (errors only), 1 = normal, 2 = verbose
verbosity = 1


def set_verbosity(level: int) -> None:
    global verbosity
    verbosity = level


def log(message: str) -> None:
    """A normal status line (suppressed by ``-q``)."""
    if verbosity >= 1:
        err.print(message, soft_wrap=True)


def debug(message: str) -> None:
    """Detail shown only with ``-v``."""
    if verbosity >= 2:
        err.print(f"[dim]{message}[/dim]", soft_wrap=True)


def warn(message: str) -> None:
    """Something the user should know about; still shown with ``-q`` off only."""
    if verbosity >= 1:
        err.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)


def error(message: str) -> None:
    """One line naming a problem; always shown."""
    err.print(f"[bold red]error:[/bold red] {message}", soft_wrap=True)


def progress(*extra_columns, transient: bool = False) -> Progress:
    """A progress bar on stderr. Use as a context manager; disabled with ``-q``."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *extra_columns,
        console=err,
        transient=transient,
        disable=verbosity < 1,
    )
