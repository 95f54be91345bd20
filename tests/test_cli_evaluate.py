"""``fsth evaluate`` as a user runs it: the table on stderr, JSON on stdout or in a file, sample grids, errors."""

from __future__ import annotations

import json

import pytest
from conftest import PORTRAIT, TALK, VOX, fsth, ok, one_error_line

from fsth.video import read_image


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No downloads, no default checkpoint, and a torch hub cache of the test's own (no weights in it)."""
    for name, value in {"FSTH_OFFLINE": "1", "FSTH_CHECKPOINT": "", "TORCH_HOME": str(tmp_path / "torch_home")}.items():
        monkeypatch.setenv(name, value)


QUICK = ("--shots", "1,2", "--targets", "2", "--metrics", "ssim,l1,akd,fid", "--no-baselines")


def test_json_on_stdout_and_the_table_on_stderr(tiny_meta_checkpoint):
    result = ok("evaluate", "-c", tiny_meta_checkpoint, VOX, *QUICK)
    report = json.loads(result.stdout)  # nothing else on stdout
    assert [s["name"] for s in report["settings"]] == ["self K=1 FF", "self K=2 FF"]
    assert report["videos"][0]["target_frames"] == [25, 35] and report["summary"]["evaluated"] == 1
    assert list(report["settings"][0]["metrics"]) == ["ssim", "l1", "akd", "fid"]
    assert "self K=1 FF" in result.stderr and "SSIM ↑" in result.stderr and "FID not computed" in result.stderr
    assert "1 of 1 videos evaluated" in result.stderr


def test_report_file_samples_and_no_overwrite(tiny_meta_checkpoint, tmp_path):
    out, samples = tmp_path / "report.json", tmp_path / "grids"
    result = ok(
        "evaluate", "-c", tiny_meta_checkpoint, VOX, *QUICK, "--cross", PORTRAIT, "-o", out, "--samples", samples
    )
    assert result.stdout == "" and f"{out}: report of 1 video(s), 3 setting(s)" in result.stderr
    report = json.loads(out.read_text())
    assert [s["name"] for s in report["settings"]] == ["self K=1 FF", "self K=2 FF", "cross portrait.jpg FF"]
    assert list(report["settings"][2]["metrics"]) == ["akd"]  # of the metrics asked for, the one cross can compute
    assert report["cross_sources"][0]["identity"] == str(PORTRAIT)
    pngs = sorted(p.name for p in (samples / "000_vox").iterdir())
    assert pngs == ["cross_portrait.jpg_FF.png", "self_K1_FF.png", "self_K2_FF.png"]
    assert read_image(samples / "000_vox" / "self_K1_FF.png").shape == ((2 * 66 - 2) * 2, (3 * 66 - 2) * 2, 3)
    before = out.read_text()
    one_error_line(fsth("evaluate", "-c", tiny_meta_checkpoint, VOX, *QUICK, "-o", out), "already exists", "--force")
    one_error_line(
        fsth("evaluate", "-c", tiny_meta_checkpoint, VOX, *QUICK, "--samples", samples), "not empty", "--force"
    )
    assert out.read_text() == before


def test_finetuned_rows(tiny_meta_checkpoint):
    result = ok(
        "evaluate",
        "-c",
        tiny_meta_checkpoint,
        TALK,
        "--shots",
        "2",
        "--targets",
        "2",
        "--metrics",
        "ssim",
        "--finetune-steps",
        "1",
        "--no-content-loss",
        "--no-baselines",
    )
    report = json.loads(result.stdout)
    assert [s["name"] for s in report["settings"]] == ["self K=2 FF", "self K=2 FT"]
    assert report["protocols"]["self"]["finetune"]["steps"] == 1
    assert result.stderr.count("content loss L_CNT (VGG19 + VGGFace) is switched off") == 1


@pytest.mark.parametrize(
    "case",
    [
        "missing checkpoint",
        "bad shots",
        "no readable video",
        "missing cross source",
        "report not json",
        "arcface without weights",
        "missing fid weights",
    ],
)
def test_errors_are_one_line(tiny_meta_checkpoint, tmp_path, case):
    c = ("-c", tiny_meta_checkpoint)
    args, fragments = {
        "missing checkpoint": (("-c", tmp_path / "nope.safetensors", VOX), ["nope.safetensors: no such checkpoint"]),
        "bad shots": ((*c, VOX, "--shots", "1,0"), ["--shots must be", "1,0"]),
        "no readable video": (
            (*c, tmp_path / "gone.mp4", PORTRAIT),
            ["no video could be evaluated (2 given)", "gone.mp4: no such file", "not a video"],
        ),
        "missing cross source": ((*c, VOX, "--cross", tmp_path / "who.jpg"), ["--cross", "who.jpg"]),
        "report not json": ((*c, VOX, "-o", tmp_path / "report.txt"), ["name it .json"]),
        "arcface without weights": ((*c, VOX, "--csim-network", "arcface"), ["--arcface-weights"]),
        "missing fid weights": (
            (*c, VOX, "--fid-weights", tmp_path / "inception.pth"),
            ["--fid-weights", "inception.pth"],
        ),
    }[case]
    one_error_line(fsth("evaluate", *args), *fragments)
    assert not (tmp_path / "report.txt").exists()
