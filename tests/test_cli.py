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


def test_no_option_default_is_written_twice():
    """Each option built from an options dataclass (``fsth.config.option``) has no default of its own on the
    command line (None: not given), and its help states the dataclass field's default: the one place it is set."""
    import dataclasses

    import typer.main

    from fsth.animate.options import AnimateOptions
    from fsth.cli import app
    from fsth.config import TrainConfig, TrainOptions
    from fsth.evaluate.options import EvalOptions, MetricOptions
    from fsth.fewshot.options import ContentLoss, FinetuneOptions, SourceOptions

    classes = {
        "animate": (SourceOptions, ContentLoss, AnimateOptions),
        "embed": (SourceOptions,),
        "finetune": (SourceOptions, ContentLoss, FinetuneOptions),
        "evaluate": (SourceOptions, ContentLoss, EvalOptions, MetricOptions),
        "train": (TrainOptions, TrainConfig),
    }
    group = typer.main.get_command(app)
    checked = 0
    for name, owners in classes.items():
        fields = {f.name: f for cls in owners for f in dataclasses.fields(cls) if "help" in f.metadata}
        for param in group.commands[name].params:
            field = fields.get(param.name)
            if field is None:
                continue
            shown = field.metadata.get("shown", field.default)
            shown = ("on" if shown else "off") if isinstance(shown, bool) else shown
            assert param.default is None, f"fsth {name} --{param.name}: a default of its own ({param.default!r})"
            assert shown is None or f"(default: {shown})" in param.help, f"fsth {name} --{param.name}: {param.help}"
            checked += 1
    assert checked > 50
