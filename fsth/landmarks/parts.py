"""The 68-point landmark scheme (iBUG 300-W; what dlib's shape predictor and FAN both output).

Indices are 0-based. "Right" and "left" are the subject's: the right eye (36-41) is on the image's left
in a frontal, unmirrored photo. Each part is a polyline; eyes and lips are closed curves.
"""

from __future__ import annotations

from typing import NamedTuple

NUM_POINTS = 68


class Part(NamedTuple):
    name: str
    start: int  # first index
    stop: int  # one past the last index
    closed: bool  # join the last point back to the first


PARTS: tuple[Part, ...] = (
    Part("jaw", 0, 17, False),
    Part("right_brow", 17, 22, False),
    Part("left_brow", 22, 27, False),
    Part("nose_ridge", 27, 31, False),
    Part("nose_base", 31, 36, False),
    Part("right_eye", 36, 42, True),
    Part("left_eye", 42, 48, True),
    Part("outer_lips", 48, 60, True),
    Part("inner_lips", 60, 68, True),
)

PART_BY_NAME = {p.name: p for p in PARTS}

# Index slices of the parts that stages use by name (every landmark index range in fsth comes from here).
JAW = slice(0, 17)
BROWS = slice(17, 27)  # right and left brow
NOSE = slice(27, 36)  # ridge and base
NOSE_BASE = slice(31, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
EYES = slice(36, 48)  # right and left eye
MOUTH = slice(48, 68)  # outer and inner lips
INNER_LIPS = slice(60, 68)
