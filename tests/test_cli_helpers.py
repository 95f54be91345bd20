"""The CLI test helpers of conftest check what they say: a traceback fails ``one_error_line``."""

from __future__ import annotations

import sys

import pytest
import typer
from conftest import one_error_line
from typer.testing import CliRunner

app = typer.Typer()


@app.command()
def run(case: str) -> None:
    if case == "clean":
        typer.echo("error: one line naming the problem", err=True)
        raise typer.Exit(1)
    if case == "printed traceback":  # a traceback on stderr, then a normal exit: what `or` let through
        typer.echo("Traceback (most recent call last):\n  ...\nValueError: boom", err=True)
        typer.echo("error: boom", err=True)
        raise typer.Exit(1)
    if case == "escaped exception":  # an exception the command did not turn into an error line
        typer.echo("error: boom", err=True)
        raise ValueError("boom")
    if case == "no error line":
        print("something went wrong", file=sys.stderr)
        raise typer.Exit(1)
    if case == "exit 0":
        typer.echo("error: but it succeeded", err=True)


def invoke(case: str):
    return CliRunner().invoke(app, [case])


def test_a_clean_error_passes():
    one_error_line(invoke("clean"), "naming the problem")


@pytest.mark.parametrize("case", ["printed traceback", "escaped exception", "no error line", "exit 0"])
def test_a_traceback_or_a_missing_error_line_fails(case):
    with pytest.raises(AssertionError):
        one_error_line(invoke(case))


def test_a_missing_fragment_fails():
    with pytest.raises(AssertionError):
        one_error_line(invoke("clean"), "not in the message")
