"""Reference outputs of MediaPipe's face-mesh and iris models on given crops, from MediaPipe's own runtime.

Run with a Python that has ``mediapipe`` 0.10.21 (not fsth's: it needs numpy < 2 and Python <= 3.12):

    /path/to/mpvenv/bin/python benchmarks/mesh_reference.py crops.npz out.npz

In: ``crops.npz`` with ``mesh`` (N, 192, 192, 3) uint8 RGB face crops and/or ``iris`` (M, 64, 64, 3) uint8 RGB
left-eye crops. Out: ``mesh_points`` (N, 468, 3) and ``mesh_face`` (N,) logits; ``iris_contour`` (M, 71, 3) and
``iris_points`` (M, 5, 3); all in crop pixels, the raw model outputs. Each crop goes through a MediaPipe graph of
ImageToTensorCalculator (the whole crop, the same size, values scaled to [0, 1], as MediaPipe's face-landmark and
iris graphs do) and InferenceCalculator (the TFLite runtime, XNNPACK off: its ``tflite`` delegate), decoded by
TensorsToLandmarksCalculator / TensorsToFloatsCalculator. fsth's port (``fsth.landmarks.mesh_nets``) is checked
against these numbers by ``benchmarks/landmarks.py`` and by the golden values in ``tests/test_mesh.py``.
"""

import sys

import mediapipe as mp
import numpy as np
from google.protobuf import text_format
from mediapipe.framework import calculator_pb2

MODULES = mp.__path__[0] + "/modules/"
GRAPH = """
input_stream: "image"
output_stream: "first"
output_stream: "second"
node {{ calculator: "ImageToTensorCalculator" input_stream: "IMAGE:image" output_stream: "TENSORS:input"
  options {{ [mediapipe.ImageToTensorCalculatorOptions.ext] {{ output_tensor_width: {size}
  output_tensor_height: {size} keep_aspect_ratio: false output_tensor_float_range {{ min: 0.0 max: 1.0 }} }} }} }}
node {{ calculator: "InferenceCalculator" input_stream: "TENSORS:input" output_stream: "TENSORS:output"
  options {{ [mediapipe.InferenceCalculatorOptions.ext] {{ model_path: "{model}" delegate {{ tflite {{}} }} }} }} }}
node {{ calculator: "SplitTensorVectorCalculator" input_stream: "output" output_stream: "t0" output_stream: "t1"
  options {{ [mediapipe.SplitVectorCalculatorOptions.ext] {{
  ranges {{ begin: 0 end: 1 }} ranges {{ begin: 1 end: 2 }} }} }} }}
node {{ calculator: "TensorsToLandmarksCalculator" input_stream: "TENSORS:t0" output_stream: "LANDMARKS:first"
  options {{ [mediapipe.TensorsToLandmarksCalculatorOptions.ext] {{ num_landmarks: {n0} }} }} }}
node {{ calculator: "{second}" input_stream: "TENSORS:t1" output_stream: "{tag}:second"
  options {{ [mediapipe.{second}Options.ext] {{ {opts} }} }} }}
"""


def run(images: np.ndarray, size: int, model: str, n0: int, second: str, tag: str, opts: str):
    text = GRAPH.format(size=size, model=MODULES + model, n0=n0, second=second, tag=tag, opts=opts)
    graph = mp.CalculatorGraph(graph_config=text_format.Parse(text, calculator_pb2.CalculatorGraphConfig()))
    got = {"first": [], "second": []}
    for name in got:
        graph.observe_output_stream(name, lambda stream, packet: got[stream].append(packet))
    graph.start_run()
    for i, image in enumerate(images):
        frame = mp.packet_creator.create_image_frame(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        graph.add_packet_to_input_stream("image", frame.at(i))
    graph.close()

    return np.array([points(p) for p in got["first"]], np.float32), got["second"]


def points(packet) -> list[list[float]]:
    """A LandmarkList packet's (x, y, z) rows."""
    return [[p.x, p.y, p.z] for p in mp.packet_getter.get_proto(packet).landmark]


def main(src: str, dst: str) -> None:
    crops = np.load(src)
    out = {}
    if "mesh" in crops and len(crops["mesh"]):
        pts, flags = run(
            crops["mesh"], 192, "face_landmark/face_landmark.tflite", 468, "TensorsToFloatsCalculator", "FLOATS", ""
        )
        out["mesh_points"] = pts
        out["mesh_face"] = np.array([mp.packet_getter.get_float_list(p)[0] for p in flags], np.float32)
    if "iris" in crops and len(crops["iris"]):
        contour, iris = run(
            crops["iris"],
            64,
            "iris_landmark/iris_landmark.tflite",
            71,
            "TensorsToLandmarksCalculator",
            "LANDMARKS",
            "num_landmarks: 5",
        )
        out["iris_contour"] = contour
        out["iris_points"] = np.array([points(p) for p in iris], np.float32)
    np.savez_compressed(dst, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
