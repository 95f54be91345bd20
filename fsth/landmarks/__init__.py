"""Landmarks: faces in frames -> 68 points -> the crop the networks see and their sketch image y(t).

Modules, in data-flow order:

``detectors``  the ``LandmarkDetector`` interface (detect, refine, redetect) and the dlib and FAN backends
``backends``   ``make_detector(backend)``: auto / mesh / dlib / FAN by name
``mesh``       the mesh backend: MediaPipe's face mesh + iris model (``mesh_nets``, torch) on dlib's faces, 478 points
``tracker``    ``LandmarkTracker``: online detect-then-track with periodic re-detection and smoothing;
               ``track_video`` / ``track_image`` -> ``LandmarkTrack``
``smoothing``  ``Smoothing`` settings and the causal ``OneEuroFilter``
``record``     ``LandmarkTrack``: landmarks + validity + crop boxes + provenance; .npz and JSONL
``crop``       ``CropPolicy``: the one crop policy (box from landmarks, smoothing over time, crop, coordinates)
``sketch``     ``draw_sketch``: the one landmark-image renderer; ``draw_overlay`` for looking at results
``pair``       ``face_pair``: frame + landmarks -> (crop x, landmark image y) at model size, for every stage
``retarget``   motion transfer: a driver's head motion and expression onto the source's own landmarks
``parts``      the 68-point scheme (which indices form the jaw, brows, eyes, ...), the mesh's groups, ``MESH_TO_68``
``mesh_convert`` (dev tool) MediaPipe's TFLite files -> ``fsth/weights/face_mesh.safetensors``
``extract``    what ``fsth landmarks`` does with one input file (and the sketch / overlay videos)
``options``    ``LandmarkOptions``: what ``fsth landmarks`` and ``fsth dataset`` ask of this stage
"""

from fsth.landmarks.backends import make_detector
from fsth.landmarks.crop import CropPolicy
from fsth.landmarks.detectors import LandmarkDetector
from fsth.landmarks.pair import FacePair, face_pair, full_box
from fsth.landmarks.parts import PARTS
from fsth.landmarks.record import LandmarkTrack
from fsth.landmarks.sketch import SKETCH_COLORS, draw_overlay, draw_sketch
from fsth.landmarks.smoothing import OneEuroFilter, Smoothing
from fsth.landmarks.tracker import LandmarkTracker, track_image, track_video

__all__ = [
    "CropPolicy",
    "FacePair",
    "LandmarkDetector",
    "LandmarkTrack",
    "LandmarkTracker",
    "OneEuroFilter",
    "PARTS",
    "SKETCH_COLORS",
    "Smoothing",
    "draw_overlay",
    "draw_sketch",
    "face_pair",
    "full_box",
    "make_detector",
    "track_image",
    "track_video",
]
