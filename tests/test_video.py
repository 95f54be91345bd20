"""The video and image layer on real files: formats, metadata, truncation, atomic writing, audio muxing."""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import GROUP, PORTRAIT, PORTRAIT_RGBA, TALK, ffmpeg

from fsth.errors import FsthError, InputError
from fsth.video import (
    VideoReader,
    VideoWriter,
    default_crf,
    expand_inputs,
    is_image,
    is_video,
    probe_video,
    read_image,
    write_image,
)

# ---------------------------------------------------------------------------------------------- images


def test_read_image_jpeg_is_rgb_uint8():
    img = read_image(PORTRAIT)
    assert img.shape == (720, 720, 3) and img.dtype == np.uint8
    bgr = cv2.imread(str(PORTRAIT))
    np.testing.assert_array_equal(img, bgr[:, :, ::-1])
    # the background of this photo is yellow: red and green high, blue low
    r, g, b = img[20:60, 20:60].reshape(-1, 3).mean(axis=0)
    assert r > 150 and g > 120 and b < 100


def test_read_image_rgba_composites_over_white(tmp_path):
    rgba = cv2.imread(str(PORTRAIT_RGBA), cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4
    np.testing.assert_array_equal(read_image(PORTRAIT_RGBA), rgba[:, :, 2::-1])  # opaque: just the colours
    rgba[:50, :80, 3] = 0  # transparent corner
    rgba[50:100, :80, 3] = 128  # half transparent band
    path = tmp_path / "transparent.png"
    cv2.imwrite(str(path), rgba)
    img = read_image(path)
    assert img.shape == (394, 424, 3)
    assert (img[:50, :80] == 255).all()
    half = img[50:100, :80].astype(int)
    expected = (rgba[50:100, :80, 2::-1].astype(int) * 128 + 255 * 127) / 255
    assert np.abs(half - expected).max() <= 1


def test_read_image_grayscale_and_16_bit(tmp_path):
    gray = cv2.cvtColor(cv2.imread(str(PORTRAIT)), cv2.COLOR_BGR2GRAY)
    for suffix in (".png", ".jpg"):
        cv2.imwrite(str(tmp_path / f"gray{suffix}"), gray)
        img = read_image(tmp_path / f"gray{suffix}")
        assert img.shape == (720, 720, 3)
        assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
    deep = np.zeros((4, 6, 3), np.uint16)
    deep[0, 0] = (65535, 257 * 100, 0)  # BGR
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    img = read_image(tmp_path / "deep.png")
    assert img.dtype == np.uint8 and tuple(img[0, 0]) == (0, 100, 255)


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an APP1 Exif segment holding just the Orientation tag (0x0112) after the JPEG's SOI marker."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_read_image_applies_exif_rotation(tmp_path):
    plain = read_image(GROUP)  # 500 wide, 375 high
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_with_exif_orientation(GROUP.read_bytes(), 6))  # 6: display rotated 90 degrees clockwise
    img = read_image(path)
    assert img.shape == (500, 375, 3)
    np.testing.assert_array_equal(img, np.rot90(plain, k=-1))


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="nope.jpg: no such file"):
        read_image(tmp_path / "nope.jpg")
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    with pytest.raises(InputError, match="notes.png: not an image"):
        read_image(text)


def test_write_image_round_trip(tmp_path):
    img = read_image(GROUP)
    write_image(tmp_path / "copy.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "copy.png"), img)
    with pytest.raises(InputError, match="does not exist"):
        write_image(tmp_path / "missing" / "copy.png", img)


# ---------------------------------------------------------------------------------------------- inputs


def test_classify_and_expand_inputs(tmp_path):
    assert is_image("a/b.JPG") and is_image("x.png") and not is_image("x.mp4")
    assert is_video("x.mp4") and is_video("y.MOV") and is_video("z.webm") and not is_video("x.png")
    (tmp_path / "id1" / "vid").mkdir(parents=True)
    for name in ("id1/vid/00002.mp4", "id1/vid/00001.mp4", "a.jpg", "notes.txt", "id1/b.png"):
        (tmp_path / name).write_bytes(b"")
    found = expand_inputs([tmp_path, tmp_path / "missing.mp4"])
    rel = [str(p.relative_to(tmp_path)) for p in found[:-1]]
    assert rel == ["a.jpg", "id1/b.png", "id1/vid/00001.mp4", "id1/vid/00002.mp4"]
    assert found[-1] == tmp_path / "missing.mp4"  # kept, so that it is reported with the other bad inputs
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image or video files"):
        expand_inputs([tmp_path / "empty"])


# ---------------------------------------------------------------------------------------------- reading


def test_video_reader_streams_all_frames_with_metadata():
    with VideoReader(TALK) as video:
        assert (video.fps, video.width, video.height) == (30.0, 480, 480)
        assert abs(video.num_frames - 60) <= 1  # an estimate from the container's duration
        assert video.has_audio and video.codec == "h264"
        frames = list(video)
    assert len(frames) == 60
    assert all(f.shape == (480, 480, 3) and f.dtype == np.uint8 for f in frames)
    # same pixels as OpenCV's own decoder, in RGB order
    cap = cv2.VideoCapture(str(TALK))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    assert np.abs(frames[0].astype(int) - bgr[:, :, ::-1].astype(int)).mean() < 1.0


@pytest.fixture(scope="module")
def other_containers(tmp_path_factory):
    """talk.mp4's first 12 frames as QuickTime, MPEG-4 part 2 and WebM files (made with the bundled ffmpeg)."""
    d = tmp_path_factory.mktemp("containers")
    small = ["-frames:v", "12", "-vf", "scale=160:160"]
    ffmpeg("-i", str(TALK), *small, "-c:v", "libx264", "-c:a", "aac", str(d / "clip.mov"))
    ffmpeg("-i", str(TALK), *small, "-c:v", "mpeg4", "-an", str(d / "clip_mp4v.mp4"))
    ffmpeg("-i", str(TALK), *small, "-c:v", "libvpx-vp9", "-an", str(d / "clip.webm"))
    return d


@pytest.mark.parametrize(
    "name,codec,audio", [("clip.mov", "h264", True), ("clip_mp4v.mp4", "mpeg4", False), ("clip.webm", "vp9", False)]
)
def test_video_reader_reads_other_containers_and_codecs(other_containers, name, codec, audio):
    with VideoReader(other_containers / name) as video:
        assert (video.width, video.height, video.codec, video.has_audio) == (160, 160, codec, audio)
        frames = list(video)
    assert len(frames) == 12 and frames[0].shape == (160, 160, 3)
    assert frames[0].std() > 10  # real picture content, not a blank frame


def test_video_reader_applies_rotation_metadata(tmp_path):
    small, rotated = tmp_path / "small.mp4", tmp_path / "rotated.mp4"
    ffmpeg("-i", str(TALK), "-frames:v", "3", "-vf", "scale=160:96", "-an", str(small))
    ffmpeg("-display_rotation", "90", "-i", str(small), "-c", "copy", str(rotated))  # metadata only: "turn me"
    with VideoReader(rotated) as video:
        assert (video.width, video.height) == (96, 160)
        assert [f.shape for f in video] == [(160, 96, 3)] * 3


def _ffmpeg_children() -> list[str]:
    """Command names of this process's live child processes (Linux /proc); empty where there is no /proc."""
    names = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
        except OSError:  # the process ended while we looked
            continue
        state, ppid = fields[1].split()[:2]
        if int(ppid) == os.getpid() and state != "Z" and "ffmpeg" in fields[0]:
            names.append(fields[0])
    return names


def test_probe_video_of_a_rotated_silent_clip_and_a_gif(tmp_path, caplog):
    small, rotated, gif = tmp_path / "small.mp4", tmp_path / "rotated.mp4", tmp_path / "clip.gif"
    ffmpeg("-i", str(TALK), "-frames:v", "3", "-vf", "scale=160:96", "-an", str(small))
    ffmpeg("-display_rotation", "90", "-i", str(small), "-c", "copy", str(rotated))
    ffmpeg("-i", str(small), "-r", "10", str(gif))
    with caplog.at_level(logging.WARNING):
        info = probe_video(rotated)
    assert (info.width, info.height) == (96, 160)  # as delivered: turned, like VideoReader's frames
    assert (info.fps, info.num_frames, info.has_audio, info.codec) == (30.0, 3, False, "h264")
    assert not caplog.records  # a rotated clip is normal: no warning about the size changing
    assert abs(info.duration - 0.1) < 0.02
    info = probe_video(gif)
    assert (info.width, info.height, info.fps, info.has_audio, info.codec) == (160, 96, 10.0, False, "gif")
    assert _ffmpeg_children() == []  # the probes' ffmpeg processes are gone


def test_truncated_video_with_index_in_front_fails_mid_stream(truncated_videos):
    path = truncated_videos["front"]
    got = []
    with pytest.raises(
        InputError,
        match=r"truncated_front.mp4: video is truncated or corrupt: decoding stopped after \d+ frames of about 6\d",
    ):
        with VideoReader(path) as video:
            for frame in video:
                got.append(frame)
    assert 0 < len(got) < 60  # the frames before the cut were delivered
    with VideoReader(path, strict=False) as video:
        assert len(list(video)) == len(got)
        assert video.problem is not None


def test_truncated_video_with_index_at_end_fails_at_open(truncated_videos):
    with pytest.raises(InputError, match="truncated_end.mp4: cannot read video: moov atom not found"):
        VideoReader(truncated_videos["end"])


def test_unreadable_videos_name_the_file(tmp_path):
    with pytest.raises(InputError, match="gone.mp4: no such file"):
        VideoReader(tmp_path / "gone.mp4")
    for name in ("fake.mp4", "fake.mkv"):
        fake = tmp_path / name
        fake.write_text("this is not a video\n" * 100)
        with pytest.raises(InputError, match=f"{name}: cannot read video"):
            VideoReader(fake)
        with pytest.raises(InputError, match=f"{name}: cannot read video"):
            probe_video(fake)
    audio_only = tmp_path / "audio.m4a"
    ffmpeg("-i", str(TALK), "-vn", "-c:a", "copy", str(audio_only))
    with pytest.raises(InputError, match="audio.m4a: has no video stream"):
        VideoReader(audio_only)


def test_missing_camera_is_a_clear_error():
    with pytest.raises(InputError, match="camera 97: cannot open"):
        VideoReader(97)


# ---------------------------------------------------------------------------------------------- writing


def test_video_writer_round_trip_with_audio(tmp_path, talk_frames):
    out = tmp_path / "copy.mp4"
    with VideoWriter(out, fps=30, audio_from=TALK) as writer:
        for frame in talk_frames[:20]:
            writer.write(frame)
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.has_audio, info.codec) == (480, 480, 30.0, True, "h264")
    with VideoReader(out) as video:
        back = list(video)
    assert len(back) == 20
    err = np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(back, talk_frames)])
    assert err < 4.0  # h264 at crf 12 (480x480 frames): close to the input
    assert out.stat().st_mode & 0o777 != 0o600  # not left with mkstemp's private permissions


def test_small_frames_are_encoded_finer_and_keep_a_faces_colour(tmp_path, talk_frames):
    """At 256x256 a face's teeth span a few of yuv420p's colour samples: frames up to 512x512 are encoded at x264's
    CRF 12, larger ones at 18 (x264 writes its settings into the stream); a crf given wins. On a real face, the
    finer encoding keeps the colour (Lab a, b) closer to the frames given."""

    def encode(frames, name, crf=None):
        out = tmp_path / name
        with VideoWriter(out, fps=25, crf=crf) as writer:
            for frame in frames:
                writer.write(frame)
        return out

    def colour_error(path, frames):
        def ab(frame):
            return cv2.cvtColor(frame, cv2.COLOR_RGB2LAB)[..., 1:].astype(int)

        with VideoReader(path) as video:
            return np.mean([np.abs(ab(a) - ab(b)).mean() for a, b in zip(video, frames, strict=True)])

    small = [cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in talk_frames[:12]]
    assert default_crf(256, 256) == 12 and default_crf(512, 512) == 12 and default_crf(1024, 682) == 18
    fine = encode(small, "small.mp4")
    assert b"crf=12.0" in fine.read_bytes()
    assert b"crf=18.0" in encode([cv2.resize(f, (720, 720)) for f in talk_frames[:2]], "large.mp4").read_bytes()
    coarse = encode(small, "coarse.mp4", crf=18)
    assert b"crf=18.0" in coarse.read_bytes()
    assert colour_error(fine, small) < 0.9 * colour_error(coarse, small)


def test_video_writer_audio_only_when_the_source_has_it(tmp_path, talk_frames):
    silent = tmp_path / "silent.mp4"
    with VideoWriter(silent, fps=25) as writer:
        writer.write(talk_frames[0])
    assert not probe_video(silent).has_audio
    again = tmp_path / "again.mp4"
    with VideoWriter(again, fps=25, audio_from=silent) as writer:  # the source has no audio track: fine
        writer.write(talk_frames[0])
    assert not probe_video(again).has_audio


def test_video_writer_pads_odd_sizes(tmp_path):
    frame = np.zeros((75, 101, 3), np.uint8)
    frame[:, -1] = (0, 0, 255)  # last column blue: the padding column repeats it
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, fps=10) as writer:
        writer.write(frame)
        writer.write(frame)
    with VideoReader(out) as video:
        back = list(video)
    assert back[0].shape == (76, 102, 3)
    assert back[0][:, -1, 2].mean() > 200 and back[0][:, -1, 0].mean() < 60


def test_video_writer_is_atomic(tmp_path, talk_frames):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, fps=30) as writer:
            writer.write(talk_frames[0])
            raise RuntimeError("the caller failed half way")
    assert list(tmp_path.iterdir()) == []  # no output and no temp file
    out.write_bytes(b"precious")
    with pytest.raises(RuntimeError):
        with VideoWriter(out, fps=30) as writer:
            writer.write(talk_frames[0])
            raise RuntimeError("again")
    assert out.read_bytes() == b"precious" and list(tmp_path.iterdir()) == [out]


def test_video_writer_errors(tmp_path, talk_frames):
    with pytest.raises(InputError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "such" / "dir.mp4", fps=30)
    with pytest.raises(FsthError, match="no frames were written"):
        with VideoWriter(tmp_path / "empty.mp4", fps=30):
            pass
    with pytest.raises(FsthError, match="earlier frames 480x480"):
        with VideoWriter(tmp_path / "mixed.mp4", fps=30) as writer:
            writer.write(talk_frames[0])
            writer.write(talk_frames[0][:100])
    assert not (tmp_path / "empty.mp4").exists() and not (tmp_path / "mixed.mp4").exists()


def test_every_frame_is_kept_when_the_audio_ends_early(tmp_path, talk_frames):
    short_audio = tmp_path / "short_audio.mp4"
    ffmpeg(
        "-i",
        str(TALK),
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-t",
        "1.5",
        "-map",
        "0:v",
        "-map",
        "0:a",
        "-shortest",
        str(tmp_path / "cut.m4a"),
    )
    ffmpeg(
        "-i", str(TALK), "-i", str(tmp_path / "cut.m4a"), "-map", "0:v", "-map", "1:a", "-c", "copy", str(short_audio)
    )
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 30, audio_from=short_audio) as writer:
        for frame in talk_frames:
            writer.write(frame)
    with VideoReader(out) as video:
        assert sum(1 for _ in video) == 60 and video.has_audio


@pytest.mark.parametrize("frames", [20, 60])
def test_video_with_audio_lasts_exactly_as_long_as_its_frames(tmp_path, talk_frames, frames):
    # talk.mp4's audio is 2 s: longer than 20 frames at 30 fps (cut), as long as 60 (kept). Frames come slowly, as
    # from a generator, while the audio file is read at once: muxing audio while streaming overshot the video by
    # up to ~0.5 s (a frozen last frame in players); the file must end with its frames.
    import time

    out = tmp_path / "out.mp4"
    with VideoWriter(out, 30, audio_from=TALK) as writer:
        for frame in talk_frames[:frames]:
            writer.write(frame)
            time.sleep(0.01)
    info = probe_video(out)
    assert info.has_audio
    assert abs(info.duration - frames / 30) <= 1 / 30 + 1e-3
    with VideoReader(out) as video:
        assert sum(1 for _ in video) == frames


def test_a_file_is_probed_once_until_it_changes(tmp_path, monkeypatch):
    import shutil

    import imageio_ffmpeg

    from fsth.video import probe_video

    runs = []
    read_frames = imageio_ffmpeg.read_frames
    monkeypatch.setattr(imageio_ffmpeg, "read_frames", lambda *a, **k: runs.append(a) or read_frames(*a, **k))
    clip = tmp_path / "clip.mp4"
    shutil.copy(TALK, clip)
    first = probe_video(clip)
    assert probe_video(clip) == first and len(runs) == 1  # the same file: ffmpeg ran once
    ffmpeg("-i", TALK, "-t", "1", "-an", clip)  # rewritten: shorter, silent
    second = probe_video(clip)
    assert len(runs) == 2 and second.duration < 1.1 < first.duration and not second.has_audio and first.has_audio
