"""Convert MediaPipe's face-mesh and iris TFLite models to ``fsth/weights/face_mesh.safetensors`` (dev tool).

    python -m fsth.landmarks.mesh_convert mediapipe-0.10.21-*.whl -o fsth/weights/face_mesh.safetensors

In: the ``mediapipe`` 0.10.21 wheel (``pip download --no-deps mediapipe==0.10.21``; any platform's wheel holds the
same two model files) or a directory holding ``face_landmark.tflite`` and ``iris_landmark.tflite``. Out: one
safetensors file, tensors named ``mesh.<torch key>`` and ``iris.<torch key>`` for
``fsth.landmarks.mesh_nets.FaceMeshNet`` / ``IrisNet``, with the source files' SHA-256 in its metadata; float16
where that is exact (the face mesh's weights, float16 in the TFLite file), else float32 (the iris model's).

The flatbuffers are read with the ``tflite`` package (``pip install tflite`` or ``fsth[convert]``: needed here
only, never at run time).
Each convolution, depthwise convolution and PReLU of the graph is matched to the torch layer of the same TFLite
name; weights stored as float16 (behind a DEQUANTIZE op) are widened to float32. Layouts: convolution kernels OHWI
-> OIHW, depthwise kernels 1HWC -> C1HW, PReLU slopes (1, 1, C) -> (C,). Every layer of the torch networks must be
filled exactly once, with the right shape, or the conversion fails.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from fsth.landmarks.mesh_nets import FaceMeshNet, IrisNet, tflite_layers

MODEL_FILES = {
    "mesh": "mediapipe/modules/face_landmark/face_landmark.tflite",
    "iris": "mediapipe/modules/iris_landmark/iris_landmark.tflite",
}
_CONV, _DEPTHWISE, _DEQUANTIZE, _PRELU = 3, 4, 6, 54  # TFLite builtin operator codes
_FLOAT32, _FLOAT16 = 0, 1  # TFLite tensor types


def read_models(source: Path) -> dict[str, bytes]:
    """The two .tflite files' bytes from a mediapipe wheel or a directory."""
    if source.is_dir():
        found = {}
        for key, member in MODEL_FILES.items():
            name = Path(member).name
            hits = [source / name, *sorted(source.rglob(name))]
            path = next((h for h in hits if h.is_file()), None)
            if path is None:
                raise SystemExit(f"error: {source}: no {name} in it")
            found[key] = path.read_bytes()
        return found
    with zipfile.ZipFile(source) as wheel:
        return {key: wheel.read(member) for key, member in MODEL_FILES.items()}


def tflite_weights(data: bytes) -> dict[str, list[np.ndarray]]:
    """TFLite layer name -> its constant inputs (kernel [, bias] or slope), float32, in TFLite layout."""
    try:
        import tflite
    except ImportError:
        raise SystemExit("error: reading TFLite files needs the tflite package: pip install tflite") from None

    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)

    def code(op):
        oc = model.OperatorCodes(op.OpcodeIndex())
        return max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())

    producer = {graph.Operators(i).Outputs(0): graph.Operators(i) for i in range(graph.OperatorsLength())}

    def constant(index: int) -> np.ndarray:
        tensor = graph.Tensors(index)
        raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(raw, np.ndarray) and raw.size:
            dtype = {_FLOAT32: np.float32, _FLOAT16: np.float16}[tensor.Type()]
            return raw.view(dtype).reshape(tensor.ShapeAsNumpy()).astype(np.float32)
        op = producer[index]  # a float16 constant behind a DEQUANTIZE op
        assert code(op) == _DEQUANTIZE, graph.Tensors(index).Name()
        return constant(op.Inputs(0))

    layers = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if code(op) in (_CONV, _DEPTHWISE, _PRELU):
            name = graph.Tensors(op.Outputs(0)).Name().decode()
            layers[name] = [constant(op.Inputs(j)) for j in range(1, op.InputsLength()) if op.Inputs(j) >= 0]
    return layers


def _torch_layout(module: torch.nn.Module, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    if isinstance(module, torch.nn.PReLU):
        return {"weight": arrays[0].reshape(-1)}
    kernel, bias = arrays
    if module.groups > 1:  # depthwise: (1, H, W, C) -> (C, 1, H, W)
        return {"weight": kernel.transpose(3, 0, 1, 2), "bias": bias}
    return {"weight": kernel.transpose(0, 3, 1, 2), "bias": bias}  # (O, H, W, I) -> (O, I, H, W)


def convert(models: dict[str, bytes]) -> dict[str, torch.Tensor]:
    """Fill FaceMeshNet and IrisNet from the TFLite weights; their state dicts under ``mesh.`` / ``iris.``."""
    out = {}
    for prefix, net in (("mesh", FaceMeshNet()), ("iris", IrisNet())):
        found = tflite_weights(models[prefix])
        layers = tflite_layers(net)
        missing = sorted(set(layers) - set(found))
        extra = sorted(set(found) - set(layers))
        if missing or extra:
            raise SystemExit(f"error: {prefix}: layers missing from the TFLite file {missing}, not in the net {extra}")
        for name, module in layers.items():
            for key, value in _torch_layout(module, found[name]).items():
                param = getattr(module, key)
                if tuple(param.shape) != value.shape:
                    raise SystemExit(f"error: {prefix} {name}.{key}: shape {value.shape}, the net has {param.shape}")
                with torch.no_grad():
                    param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        out.update({f"{prefix}.{k}": _compact(v) for k, v in net.state_dict().items()})
    return out


def _compact(t: torch.Tensor) -> torch.Tensor:
    """float16 where that loses nothing (the face mesh's weights are float16 in the TFLite file), else float32."""
    half = t.half()
    return half.contiguous() if torch.equal(half.float(), t) else t.contiguous()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fsth.landmarks.mesh_convert", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="the mediapipe 0.10.21 wheel, or a directory with the .tflite files")
    parser.add_argument("-o", "--output", type=Path, default=Path("fsth/weights/face_mesh.safetensors"))
    args = parser.parse_args(argv)
    from safetensors.torch import save_file

    models = read_models(args.source)
    tensors = convert(models)
    metadata = {f"{k}_sha256": hashlib.sha256(v).hexdigest() for k, v in models.items()}
    metadata["source"] = "mediapipe 0.10.21: " + ", ".join(MODEL_FILES.values())
    metadata["license"] = "Apache-2.0 (Google LLC, the MediaPipe authors)"
    save_file(tensors, str(args.output), metadata=metadata)
    print(f"{args.output}: {len(tensors)} tensors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
