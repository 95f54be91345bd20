"""The example scripts never delete or overwrite what their output directory holds without --force."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("script", ["train_tiny.py", "fewshot_walkthrough.py", "landmarks_walkthrough.py"])
def test_an_example_refuses_a_directory_that_holds_files(tmp_path, script):
    out = tmp_path / "out"
    (out / "run").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "run" / "meta.safetensors").write_bytes(b"a checkpoint")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--force" in lines[0] and str(out) in lines[0]
    assert (out / "notes.txt").read_text() == "mine" and (
        out / "run" / "meta.safetensors"
    ).read_bytes() == b"a checkpoint"


def test_fresh_output_dir(tmp_path):
    from fsth.errors import InputError
    from fsth.files import fresh_output_dir

    assert fresh_output_dir(tmp_path / "new" / "dir").is_dir()
    (tmp_path / "new" / "dir" / "x").write_text("x")
    with pytest.raises(InputError, match="--force"):
        fresh_output_dir(tmp_path / "new" / "dir")
    assert list(fresh_output_dir(tmp_path / "new" / "dir", force=True).iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        fresh_output_dir(tmp_path / "file", force=True)
