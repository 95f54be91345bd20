"""The README's picture: frames of `make demo`, driver | result, side by side.

    make demo && python examples/warp256/demo_frames.py out/demo.mp4 examples/demo_frames.png

Takes the driver (tests/assets/talk.mp4) and the demo's result at five moments: mouth closed, opening, wide open,
closing, closed again (talk.mp4's frames 4, 13, 25, 46, 56), the driver's centre square beside each result frame.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fsth.video import VideoReader, write_image  # noqa: E402

FRAMES = (4, 13, 25, 46, 56)


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: demo_frames.py RESULT.mp4 OUT.png", file=sys.stderr)
        return 2
    result_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    with VideoReader(ROOT / "tests" / "assets" / "talk.mp4") as video:
        driver = list(video)
    with VideoReader(result_path) as video:
        result = list(video)
    side = result[0].shape[0]
    rows = []
    for i in FRAMES:
        d = cv2.resize(driver[i], (side, side), interpolation=cv2.INTER_AREA)
        r = result[i] if result[i].shape[1] == side else cv2.resize(result[i], (side, side))
        rows.append(np.concatenate([d, r], axis=0))
    write_image(out, np.concatenate(rows, axis=1))  # columns: one moment each; driver above, result below
    print(f"{out}: driver (top) | result (bottom) at frames {', '.join(map(str, FRAMES))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
