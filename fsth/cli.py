"""The ``fsth`` command line: one thin function per subcommand over the core package.

Global options (before the subcommand): ``--device auto|cpu|cuda``, ``-v/--verbose``, ``-q/--quiet``,
``--version``. Data goes to stdout or to files; progress and messages go to stderr. A problem with the
user's input ends with one ``error: ...`` line on stderr and a non-zero exit (see ``fsth.errors``).
"""

from __future__ import annotations

import enum
import functools
import sys
from typing import Annotated, Callable

import typer

from fsth import __version__, console
from fsth.errors import FsthError

app = typer.Typer(
    name="fsth",
    help="Few-shot neural talking heads: landmarks, training, embedding, fine-tuning, animation, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


class DeviceChoice(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"fsth {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    device: Annotated[
        DeviceChoice,
        typer.Option(
            "--device",
            help="Where to run the networks: auto (CUDA when available), cpu or cuda.",
            envvar="FSTH_DEVICE",
        ),
    ] = DeviceChoice.auto,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show more detail on stderr.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on stderr: no progress bars or status lines.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    from fsth.device import set_device

    console.set_verbosity(0 if quiet else 2 if verbose else 1)
    try:
        set_device(device.value)
    except FsthError as exc:
        console.error(str(exc))
        raise typer.Exit(2) from None


def command(func: Callable) -> Callable:
    """Register ``func`` as a subcommand whose ``FsthError``s become one stderr line + exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FsthError as exc:
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.error("interrupted")
            raise typer.Exit(130) from None

    return app.command()(wrapper)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:  # `fsth landmarks x.mp4 | head` closes stdout early: not an error
        sys.stderr.close()
        sys.exit(0)
