"""Shared fixtures: the real media in tests/assets, a dlib detector, videos derived from talk.mp4, and the
tiny model preset with seeded inputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

ASSETS = Path(__file__).parent / "assets"
TALK = ASSETS / "talk.mp4"  # 480x480, 30 fps, 60 frames, with audio
PORTRAIT = ASSETS / "portrait.jpg"  # 720x720, one face, open mouth
PORTRAIT_RGBA = ASSETS / "portrait_rgba.png"  # 424x394 RGBA, one face
PORTRAIT_POUT = ASSETS / "portrait_pout.jpg"  # 400x400, one face that needs a lenient search
GROUP = ASSETS / "group.jpg"  # 500x375, three faces
OBAMA = ASSETS / "obama.jpg"  # 360x450, Barack Obama, official portrait
OBAMA_BIDEN = ASSETS / "obama_biden.jpg"  # 560x329, Obama (left) and Joe Biden (right)
SMILE = ASSETS / "smile.mp4"  # 360x360, 30 fps, 45 frames, no audio: a second man, smiling
VOX = ASSETS / "vox.mp4"  # 410x412, 25 fps, 40 frames, no audio: a VoxCeleb-style close-up, talking


@pytest.fixture(autouse=True)
def _ctrl_c_as_it_was(request):
    """Ctrl-C's handler put back after each test, with a warning naming the test that changed it. Left ignored, every
    process a later test starts inherits it ignored (Python keeps an inherited ignored SIGINT): the interrupted
    dataset build ran on to its end, deaf to Ctrl-C, in 3 of some 10 runs of the suite here."""
    import signal
    import threading
    import warnings

    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    if after is not before and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, before)
        warnings.warn(f"{request.node.nodeid} left SIGINT's handler as {after!r}; put back", stacklevel=1)


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg quietly; fail the test with its message if it fails."""
    from fsth.video import ffmpeg_exe

    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()


def serve_downloads(monkeypatch, serve) -> None:
    """Answer first-use downloads (``torch.hub.download_url_to_file``, through which ``fsth.hub``
    fetches) with ``serve(url)``: the bytes of the file, or an exception it raises. torch's own download code runs,
    temp file, checksum and rename included; only the network is replaced."""
    import email.message
    import io

    import torch.hub

    class Response(io.BytesIO):
        def info(self):
            return email.message.Message()  # no Content-Length

    def urlopen(request, *args, **kwargs):
        return Response(serve(request.full_url))

    monkeypatch.setattr(torch.hub, "urlopen", urlopen)


# -- media and landmarks -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dlib_detector():
    from fsth.landmarks import make_detector

    return make_detector("dlib")


@pytest.fixture(scope="session")
def talk_frames() -> list[np.ndarray]:
    from fsth.video import VideoReader

    with VideoReader(TALK) as video:
        return list(video)


@pytest.fixture(scope="session")
def talk_track(dlib_detector):
    from fsth.landmarks import track_video

    return track_video(TALK, dlib_detector)


@pytest.fixture(scope="session")
def no_face_image(tmp_path_factory) -> Path:
    """A real photo region without a face: the yellow wall and hair edge at the top left of portrait.jpg."""
    from fsth.video import read_image, write_image

    path = tmp_path_factory.mktemp("noface") / "wall.png"
    write_image(path, read_image(PORTRAIT)[:200, :200])
    return path


@pytest.fixture(scope="session")
def faceless_video(tmp_path_factory, no_face_image) -> Path:
    """A 10-frame video of the faceless wall photo."""
    from fsth.video import VideoWriter, read_image

    path = tmp_path_factory.mktemp("faceless") / "wall.mp4"
    with VideoWriter(path, 10) as out:
        for _ in range(10):
            out.write(read_image(no_face_image))
    return path


@pytest.fixture(scope="session")
def truncated_videos(tmp_path_factory) -> dict[str, Path]:
    """talk.mp4 cut in half: 'front' has its index first (fails mid-stream), 'end' has it last (fails at open)."""
    d = tmp_path_factory.mktemp("truncated")
    end_index = d / "index_at_end.mp4"
    ffmpeg("-i", str(TALK), "-c", "copy", str(end_index))
    out = {}
    for name, src in (("front", TALK), ("end", end_index)):
        data = src.read_bytes()
        out[name] = d / f"truncated_{name}.mp4"
        out[name].write_bytes(data[: len(data) // 2])
    return out


@pytest.fixture(scope="session")
def random_fan_weights(tmp_path_factory):
    """A 2DFAN4 state dict with random weights: exercises the real loading and inference code, not accuracy."""
    import torch
    from face_alignment.models import FAN

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fan") / "2DFAN4-random.pth.tar"
    torch.save(FAN(4).state_dict(), path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one FAN pass: ~0.5 s; two threads can stall for seconds beside a busy neighbour
    yield path
    torch.set_num_threads(threads)


# -- networks ------------------------------------------------------------------------------------------


@pytest.fixture
def tiny():
    from fsth.config import ModelConfig

    return ModelConfig.preset("tiny")


@pytest.fixture
def frames(tiny):
    """A reproducible batch of 2 frames x and landmark images y, (2, 3, 64, 64) in [-1, 1]."""
    import torch

    g = torch.Generator().manual_seed(0)
    size = (2, 3, tiny.image_size, tiny.image_size)
    return torch.rand(size, generator=g) * 2 - 1, torch.rand(size, generator=g) * 2 - 1


def set_attention_gammas(*nets, value: float = 0.5) -> None:
    """Self-attention starts with gamma = 0 (SAGAN), which gives its q, k, v, o convs exactly zero
    gradient until the first update; tests that check gradients set gamma as after some training."""
    import torch

    for net in nets:
        for name, p in net.named_parameters():
            if name.endswith("gamma"):
                torch.nn.init.constant_(p, value)


def random_state_dict(module, seed: int = 0) -> dict:
    """``module``'s state dict with random weights that keep activations in range (He-scaled convs and linears,
    BatchNorm as identity with small random shifts): for tests that load a weights file of a standard layout."""
    import torch

    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = 1 + 0.1 * torch.rand(value.shape, generator=g)
        elif key.endswith(("running_mean", ".bias")):
            state[key] = 0.1 * torch.randn(value.shape, generator=g)
        elif value.dim() > 1:  # conv / linear weight
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=g) * (2 / fan_in) ** 0.5
        else:  # BatchNorm scale, PReLU slope
            state[key] = (
                1 + 0.1 * torch.randn(value.shape, generator=g) if "prelu" not in key else torch.full_like(value, 0.25)
            )
    return state


@pytest.fixture(scope="session")
def fid_weights(tmp_path_factory):
    """FID's Inception weights file in pytorch-fid's layout (random values, with its 1008-class fc)."""
    import torch

    from fsth.metrics.inception import FIDInceptionV3

    state = random_state_dict(FIDInceptionV3())
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    path = tmp_path_factory.mktemp("fid") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    return path


# -- weights files in their standard layouts (random values) ------------------------------------------


def _conv_shapes(layers):
    """(index in the features stack, c_in, c_out) of every conv of a VGG layer list."""
    index, c_in, out = 0, 3, []
    for v in layers:
        if v == "M":
            index += 1
        else:
            out.append((index, c_in, v))
            index, c_in = index + 2, v
    return out


def torchvision_vgg19_state(seed=0):
    """A state dict in torchvision's vgg19 layout with random weights (the classifier kept small:
    the loader never reads it, and its real 4096 x 25088 matrix would make a 0.5 GB test file)."""
    import torch

    from fsth.models.perceptual import VGG19_LAYERS

    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, c_in, c_out in _conv_shapes(VGG19_LAYERS):
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * 0.05
        state[f"features.{index}.bias"] = torch.randn(c_out, generator=g) * 0.05
    for i in (0, 3, 6):
        state[f"classifier.{i}.weight"], state[f"classifier.{i}.bias"] = torch.zeros(2, 2), torch.zeros(2)
    return state


def vgg_face_dag_state(seed=0):
    """A state dict in vgg_face_dag.pth's layout (conv1_1 ... conv5_3, fc6-fc8) with random weights."""
    import torch

    from fsth.models.perceptual import VGG16_LAYERS

    g = torch.Generator().manual_seed(seed)
    state, block, conv, last = {}, 1, 1, None
    for index, c_in, c_out in _conv_shapes(VGG16_LAYERS):
        if last is not None and index - last > 2:
            block, conv = block + 1, 1
        state[f"conv{block}_{conv}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * 0.05
        state[f"conv{block}_{conv}.bias"] = torch.randn(c_out, generator=g) * 0.05
        conv, last = conv + 1, index
    for i in (6, 7, 8):
        state[f"fc{i}.weight"], state[f"fc{i}.bias"] = torch.zeros(2, 2), torch.zeros(2)
    return state


def interrupt_finetuning_at(monkeypatch, call: int) -> None:
    """Make the ``call``-th fine-tuning step raise KeyboardInterrupt, as Ctrl-C would."""
    import fsth.fewshot.finetune as ft

    calls, real_step = [], ft.finetune_step

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(ft, "finetune_step", step)


# -- datasets ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def video_tree(tmp_path_factory) -> Path:
    """A VoxCeleb-style tree person/video/clip.mp4 of the three real clips; person C's video has two clips."""
    import shutil

    tree = tmp_path_factory.mktemp("tree")
    for rel, src in (
        ("A/v1/00001.mp4", TALK),
        ("B/v1/00001.mp4", SMILE),
        ("C/v1/00001.mp4", VOX),
        ("C/v1/00002.mp4", VOX),
    ):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tree / rel)
    return tree


DATASET_ARGS = ("--size", "128", "--frames-per-video", "10", "--min-frames", "4", "--workers", "1")


@pytest.fixture(scope="session")
def dataset_dir(video_tree, tmp_path_factory) -> Path:
    """``video_tree`` built into a dataset by the CLI (128 px crops, 10 frames per video). Copy it to modify it."""
    from typer.testing import CliRunner

    from fsth.cli import app

    out = tmp_path_factory.mktemp("dataset") / "ds"
    result = CliRunner().invoke(app, ["landmarks", str(video_tree), "--dataset", str(out), *DATASET_ARGS])
    assert result.exit_code == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="session")
def tiny_meta_checkpoint(tmp_path_factory) -> Path:
    """A ``meta`` checkpoint of the tiny preset from seeded randomly initialised networks (dlib landmarks, the
    default crop policy): builds and runs everything, produces no likeness."""
    import torch

    from fsth.checkpoint import save_checkpoint
    from fsth.config import ModelConfig
    from fsth.landmarks import CropPolicy
    from fsth.models import Discriminator, Embedder, Generator

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny")
    path = tmp_path_factory.mktemp("meta") / "tiny_meta.safetensors"
    nets = {"E": Embedder(cfg), "G": Generator(cfg), "D": Discriminator(cfg, num_videos=4)}
    return save_checkpoint(path, "meta", nets, cfg, step=0, crop_policy=CropPolicy().to_dict(), landmark_backend="dlib")


# -- the CLI as a user runs it ---------------------------------------------------------------------------
# One copy of the helpers every CLI test uses: ``from conftest import fsth, ok, one_error_line``. ``env`` adds to
# (or, with "" values, blanks) the test process's environment; a test module sets its own with an autouse fixture
# and ``monkeypatch.setenv``.

OFFLINE = {"FSTH_OFFLINE": "1", "FSTH_CHECKPOINT": "", "DISPLAY": "", "WAYLAND_DISPLAY": ""}


def fsth(*args, env: dict | None = None):
    """``fsth ARGS`` in this process (typer's CliRunner): a Result with exit_code, stdout, stderr, exception."""
    from typer.testing import CliRunner

    from fsth.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def ok(*args, env: dict | None = None):
    """``fsth ARGS``, which must succeed; the Result."""
    result = fsth(*args, env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def one_error_line(result, *fragments: str) -> None:
    """The failure contract: a non-zero exit, no traceback (neither printed nor escaped: typer.Exit is a
    SystemExit), and an ``error:`` line; every fragment appears in stderr."""
    assert result.exit_code != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and (
        result.exception is None or isinstance(result.exception, SystemExit)
    ), (result.exception, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert lines, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
