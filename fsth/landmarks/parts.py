"""The 68-point landmark scheme (iBUG 300-W; what dlib's shape predictor and FAN both output), and named index
groups of MediaPipe's 478-point face mesh (the ``mesh`` backend) with its 68-point correspondence ``MESH_TO_68``.

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
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)

# ---------------------------------------------------------------------------------------------- the 478-point mesh
# MediaPipe's face mesh (the ``mesh`` backend): 468 vertices, then 10 iris points. Indices are MediaPipe's; "right"
# and "left" are the subject's, as above (the right eye, 33-133, is on the image's left in a frontal photo).
# Curves run from the subject's right to left (image left to right in a frontal photo), lids and lips corner to
# corner, both ends included.

NUM_MESH_POINTS = 478

MESH_LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
MESH_LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
MESH_LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
MESH_LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# the closed outer contour: upper lip corner to corner, then the lower lip back (corners once)
MESH_LIPS_OUTER = MESH_LIPS_OUTER_UPPER + MESH_LIPS_OUTER_LOWER[-2:0:-1]
MESH_LIPS_INNER = MESH_LIPS_INNER_UPPER + MESH_LIPS_INNER_LOWER[-2:0:-1]

# eyes: corners (outer, inner for the right eye; inner, outer for the left: both image left to right)
MESH_RIGHT_EYE_CORNERS = (33, 133)
MESH_RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
MESH_RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
MESH_LEFT_EYE_CORNERS = (362, 263)
MESH_LEFT_EYE_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
MESH_LEFT_EYE_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
# the lid points the iris model refines, in its eye-contour order (its first 16 points): lower lid from the outer
# corner to the inner one, then the upper lid without the corners (the left eye mirrored like the image the model
# sees); the corners themselves (positions 0 and 8) stay the mesh's, which set the face crop's angle
MESH_RIGHT_EYELIDS = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
MESH_LEFT_EYELIDS = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)

# the measures of opening (retargeting's ratios, the expressions benchmark): the inner lips' centre pair, the mouth's
# outer corners, and per eye (right, left) its corners with the three (upper, lower) lid pairs at its middle
MESH_MOUTH_GAP = (MESH_LIPS_INNER_UPPER[5], MESH_LIPS_INNER_LOWER[5])  # (13, 14)
MESH_MOUTH_CORNERS = (MESH_LIPS_OUTER_UPPER[0], MESH_LIPS_OUTER_UPPER[-1])  # (61, 291)
MESH_EYE_LIDS = tuple(
    (corners, tuple(zip(upper[3:6], lower[3:6])))
    for corners, upper, lower in (
        (MESH_RIGHT_EYE_CORNERS, MESH_RIGHT_EYE_UPPER, MESH_RIGHT_EYE_LOWER),
        (MESH_LEFT_EYE_CORNERS, MESH_LEFT_EYE_UPPER, MESH_LEFT_EYE_LOWER),
    )
)  # (((33, 133), ((160, 144), (159, 145), (158, 153))), ((362, 263), ((385, 380), (386, 374), (387, 373))))

# irises: centre, then four points on the iris edge
MESH_RIGHT_IRIS = (468, 469, 470, 471, 472)
MESH_LEFT_IRIS = (473, 474, 475, 476, 477)
MESH_IRISES = MESH_RIGHT_IRIS + MESH_LEFT_IRIS

# brows: the upper and lower edge, outer end to inner end on the right, inner to outer on the left
MESH_RIGHT_BROW_UPPER = (70, 63, 105, 66, 107)
MESH_RIGHT_BROW_LOWER = (46, 53, 52, 65, 55)
MESH_LEFT_BROW_UPPER = (336, 296, 334, 293, 300)
MESH_LEFT_BROW_LOWER = (285, 295, 282, 283, 276)

# the face's outline, closed, from the top of the forehead (10) down the subject's left side, chin (152), back up
MESH_FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip

# The iBUG 68 points as mesh vertices (``mesh.mesh_to_68``): for each of the 68, the vertex nearest to dlib's point
# on average over 115 frames of 10 shared talking-head clips (distances in eye distances), searched among the face
# oval for the jaw (mirror pairs chosen together), the lid vertices for the eyes and the lip contours for the lips;
# the eye corners are the mesh's own (33, 133, 362, 263) and the left brow mirrors the right. Mean distance to
# dlib's points on those frames: 0.055 eye distances (jaw 0.06-0.13, where the mesh follows the face's silhouette;
# eyes and lips 0.02-0.05).
MESH_TO_68 = (
    127, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 356,  # jaw
    70, 63, 105, 66, 55, 285, 296, 334, 293, 300,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 460,  # nose ridge, nose base
    33, 160, 158, 133, 153, 144,  # right eye
    362, 385, 387, 263, 373, 380,  # left eye
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
)  # fmt: skip
