"""The CLI shell: version, help, global options, and the one-line error contract."""

import subprocess
import sys

from typer.testing import CliRunner

from fsth import __version__
from fsth.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"fsth {__version__}"


def test_python_dash_m_runs_the_same_program():
    out = subprocess.run([sys.executable, "-m", "fsth", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"fsth {__version__}"
