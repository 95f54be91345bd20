"""benchmarks/mouth_bounds.py: its decomposition adds up, its oracles are exact at the answer, its probe starts at
the warp (the figures of issue 10's closing note rest on these)."""

import sys

import numpy as np
import pytest
import torch
from conftest import ASSETS, TALK

sys.path.insert(0, str(ASSETS.parent.parent / "benchmarks"))


@pytest.fixture(scope="module")
def pair(talk_track):
    from fsth.fewshot import crop_track_frames

    frames = np.flatnonzero(talk_track.valid)
    pairs = crop_track_frames(TALK, talk_track, {int(frames[0]), int(frames[30])}, 256)
    return pairs[int(frames[0])], pairs[int(frames[30])]


def test_parts_sum_to_the_box_and_vanish_at_the_real_frame(pair):
    from default_model import box_of
    from mouth_bounds import parts

    source, target = pair
    box = box_of(target.points[48:68], 256, 0.5)
    total, inner, lips, skin = parts(source.crop, target.crop, target.points, box)
    assert total > 0.01 and min(inner, lips, skin) >= 0
    assert inner + lips + skin == pytest.approx(total, rel=1e-5)
    assert parts(target.crop, target.crop, target.points, box) == [0.0, 0.0, 0.0, 0.0]


def test_oracles_of_the_real_frame_leave_nothing(pair):
    from default_model import box_of
    from mouth_bounds import oracles

    _, target = pair
    box = box_of(target.points[48:68], 256, 0.5)
    got = oracles(target.crop, target.crop, target.points, box)
    assert got["real_inner_mouth"] == 0.0
    assert got["colour_fit"] < 1e-4 and got["flow_aligned"] < 2e-3 and got["flow_px"] < 0.1


def test_untrained_probe_is_the_warp_and_learns(pair):
    from mouth_bounds import FlowProbe, probe_warp

    from fsth.landmarks.sketch import draw_sketch
    from fsth.models import images_to_tensor

    source, target = pair
    net = FlowProbe()
    made, warped = probe_warp(
        net,
        images_to_tensor(source.crop[None]),
        images_to_tensor(draw_sketch(target.points, 256)[None]),
        torch.as_tensor(source.points[None], dtype=torch.float32),
        torch.as_tensor(target.points[None], dtype=torch.float32),
    )
    assert torch.equal(made, warped)
    (made - images_to_tensor(target.crop[None])).abs().mean().backward()
    assert net.out.weight.grad.abs().sum() > 0
