"""The README's picture: frames of `make demo` (and of other portraits driven by the same driver), driver above.

    make demo && fsth animate tests/assets/obama.jpg tests/assets/talk.mp4 -o out/obama.mp4
    python examples/warp256/demo_frames.py out/demo.mp4 out/obama.mp4 examples/demo_frames.png

Takes the driver (tests/assets/talk.mp4) and each result at five moments: mouth closed, opening, wide open,
closing, closed again (talk.mp4's frames 4, 13, 25, 46, 56): the driver's row, then a row per result.
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
    if len(sys.argv) < 3:
        print("usage: demo_frames.py RESULT.mp4 [RESULT.mp4 ...] OUT.png", file=sys.stderr)
        return 2
    results, out = [Path(p) for p in sys.argv[1:-1]], Path(sys.argv[-1])
    with VideoReader(ROOT / "tests" / "assets" / "talk.mp4") as video:
        driver = list(video)
    rows = []
    for path in results:
        with VideoReader(path) as video:
            result = list(video)
        side = result[0].shape[0]
        if not rows:
            rows.append([cv2.resize(driver[i], (side, side), interpolation=cv2.INTER_AREA) for i in FRAMES])
        rows.append([result[i] if result[i].shape[1] == side else cv2.resize(result[i], (side, side)) for i in FRAMES])
    write_image(out, np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0))
    print(f"{out}: the driver, then {len(results)} result(s), at frames {', '.join(map(str, FRAMES))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
