"""Walkthrough of the landmark stage on the bundled clip, with the Python API that `fsth landmarks` uses.

    python examples/landmarks_walkthrough.py            # writes into out/walkthrough/ (again: --force)

1. track the 68 landmarks of a video (`track_video`) and save them (.npz);
2. turn one frame into what the networks will see: the crop (`CropPolicy.crop`) and its landmark image
   (`CropPolicy.to_crop` + `draw_sketch`), saved side by side as a PNG;
3. drive the online tracker frame by frame, as `fsth animate` will from a webcam;
4. write the sketch video with the clip's sound.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fsth.files import parse_with_out_dir  # noqa: E402
from fsth.landmarks import LandmarkTrack, LandmarkTracker, draw_overlay, draw_sketch, make_detector, track_video  # noqa: E402
from fsth.landmarks.extract import write_sketch  # noqa: E402
from fsth.video import VideoReader, write_image  # noqa: E402

CLIP = ROOT / "tests" / "assets" / "talk.mp4"
DEFAULT_OUT = ROOT / "out" / "walkthrough"
OUT = DEFAULT_OUT


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    global OUT
    args, OUT = parse_with_out_dir(parser, DEFAULT_OUT)
    detector = make_detector("auto")  # FAN if its weights are on disk, else dlib (offline)

    # 1. Landmarks of every frame, crop boxes smoothed over time.
    track = track_video(CLIP, detector)
    track.save(OUT / "talk.npz")
    print(f"{len(track)} frames, {track.num_valid} with a face, {track.fps:g} fps, backend {track.backend}")
    print(f"crop policy: {track.crop_policy}")
    print(f"frame 30, nose tip at {track.landmarks[30, 30].round(1)} px, crop box {track.boxes[30].round(1)}")
    assert len(LandmarkTrack.load(OUT / "talk.npz")) == len(track)

    # 2. One frame as the networks see it: the 256x256 crop and its landmark image y(t).
    with VideoReader(CLIP) as video:
        frame = next(f for i, f in enumerate(video) if i == 30)
    policy, box = track.crop_policy, track.boxes[30]
    crop = policy.crop(frame, box, 256)
    sketch = draw_sketch(policy.to_crop(track.landmarks[30], box, 256), 256)
    overlay = draw_overlay(frame, track.landmarks[30], box)
    small = cv2.resize(overlay, (256, 256), interpolation=cv2.INTER_AREA)  # the 480x480 frame, to fit beside them
    write_image(OUT / "frame30.png", np.concatenate([small, crop, sketch], axis=1))
    print(f"wrote {OUT / 'frame30.png'}: frame with landmarks and crop box | crop | landmark image")

    # 3. The online tracker: one frame in, landmarks out (None when there is no face).
    tracker = LandmarkTracker(detector, fps=track.fps)
    with VideoReader(CLIP) as video:
        live = [tracker.update(f) for f in video]
    gap = [float(np.linalg.norm(p[66] - p[62])) if p is not None else 0.0 for p in live]
    print(f"online tracker: {sum(p is not None for p in live)} frames, {tracker.searches} face search(es); "
          f"mouth opening from {min(gap):.0f} to {max(gap):.0f} px")  # fmt: skip

    # 4. The landmark images as a video, with the clip's sound.
    write_sketch(track, OUT / "talk_sketch.mp4", size=256)
    print(f"wrote {OUT / 'talk_sketch.mp4'}")


if __name__ == "__main__":
    main()
