"""Where the mesh backend's two networks run: LiteRT on a CPU, the torch port on CUDA (``load_runtime``).

Stage: landmarks, inside ``fsth.landmarks.mesh.MeshDetector``. In: crops as (B, S, S, 3) uint8 RGB arrays. Out:
numpy float32 arrays in crop pixels:

* ``runtime.mesh(crops)`` (192x192 face crops) -> points (B, 468, 3) and face-presence logits (B,);
* ``runtime.iris(crops)`` (64x64 eye crops, left eyes mirrored) -> eye contour (B, 71, 3) and iris (B, 5, 3).

Two runtimes, one set of networks (MediaPipe's ``face_landmark.tflite`` and ``iris_landmark.tflite``, shipped in
``fsth/weights`` beside their torch conversion, ``face_mesh.safetensors``; see ``fsth/weights/FACE_MESH.md``):

* ``LiteRuntime``: Google's TensorFlow Lite runtime (``ai-edge-litert``, its XNNPACK CPU kernels) runs the .tflite
  files themselves, one thread each: MediaPipe's own arithmetic, about 3x faster on a CPU core than the torch port
  (face 1.2 vs 3.7 ms, both eyes 2.6 vs 6.6 ms, measured side by side; ``benchmarks/landmarks.py --mesh``). The
  interpreters are not thread-safe: each thread gets its own pair.
* ``TorchRuntime``: the torch port (``fsth.landmarks.mesh_nets``): on CUDA, batched, and on a CPU where LiteRT is
  not installed (it has no wheel for every platform). On a CPU its passes run on one torch thread (``one_thread``).

The two agree with MediaPipe's runtime to within 0.0002 px on the golden crops of ``tests/test_mesh.py``.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from fsth.errors import MissingWeightsError

MODELS = {"mesh": "face_landmark.tflite", "iris": "iris_landmark.tflite"}  # in fsth/weights
RUNTIMES = ("auto", "litert", "torch")


def model_path(name: str) -> Path:
    from fsth.weights import shipped_model

    return shipped_model().parent / MODELS[name]


def litert_available() -> bool:
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def installed_runtimes() -> list[str]:
    """The runtimes this installation can run on a CPU, ``auto``'s choice first (``litert`` when it imports)."""
    return [r for r in RUNTIMES[1:] if r != "litert" or litert_available()]


def load_runtime(device, runtime: str = "auto"):
    """The runtime for ``device`` (a torch.device): ``auto`` = LiteRT on a CPU when it is installed, else torch."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, not {runtime!r}")
    if runtime == "litert" or (runtime == "auto" and device.type == "cpu" and litert_available()):
        if device.type != "cpu":
            raise ValueError("the LiteRT runtime runs on a CPU only")
        return LiteRuntime()
    return TorchRuntime(str(device))


class LiteRuntime:
    """The .tflite files run by LiteRT, one interpreter pair per thread, batch 1 (a batch is a loop)."""

    name = "litert"

    def __init__(self):
        paths = {k: model_path(k) for k in MODELS}
        for path in paths.values():
            if not path.is_file():
                raise MissingWeightsError(f"the mesh backend's model is missing: {path} (reinstall fsth)")
        self._models = {k: p.read_bytes() for k, p in paths.items()}
        self._local = threading.local()

    def _interpreter(self, name: str):
        interpreters = self._local.__dict__.setdefault("interpreters", {})
        if name not in interpreters:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=self._models[name], num_threads=1)
            with _quiet_native_stderr():  # the first in a process says "INFO: Created ... XNNPACK delegate"
                interpreter.allocate_tensors()
            outputs = sorted(interpreter.get_output_details(), key=lambda d: -int(np.prod(d["shape"])))
            source = interpreter.get_input_details()[0]["index"]
            interpreters[name] = (interpreter, source, [d["index"] for d in outputs])
        return interpreters[name]

    def _run(self, name: str, crops: np.ndarray, shapes: tuple) -> list[np.ndarray]:
        interpreter, source, outputs = self._interpreter(name)
        x = crops.astype(np.float32) * np.float32(1 / 255)
        out = [np.empty((len(crops), *s), np.float32) for s in shapes]  # the larger output first
        for i in range(len(crops)):
            interpreter.set_tensor(source, x[i : i + 1])
            interpreter.invoke()
            for o, index in zip(out, outputs):
                o[i] = interpreter.get_tensor(index).reshape(o.shape[1:])
        return out

    def mesh(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points, logits = self._run("mesh", crops, ((468, 3), ()))
        return points, logits

    def iris(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        contour, iris = self._run("iris", crops, ((71, 3), (5, 3)))
        return contour, iris


_stderr_lock = threading.Lock()
_stderr_quieted = False  # LiteRT prints its delegate line once per process: only the first allocation needs it


@contextmanager
def _quiet_native_stderr():
    """File descriptor 2 points at /dev/null inside, the first time in a process (native code's messages to stderr
    are dropped; Python's own stderr is flushed first). For a call of a few milliseconds: another thread's stderr
    output then is lost too, so later calls (each new thread's interpreters) leave stderr alone."""
    global _stderr_quieted
    import os
    import sys

    with _stderr_lock:
        if _stderr_quieted:
            yield
            return
        _stderr_quieted = True
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextmanager
def one_thread():
    """Torch on one CPU thread while any caller is inside (callers on several Python threads share the setting;
    the last one out restores the caller's): these networks' layers are too small to share between cores, and with
    a second thread busy elsewhere (the video decoder, another process) torch's threads wait on each other: 7-30x
    slower passes were measured on a loaded 2-core machine."""
    global _threads_users, _threads_saved
    import torch

    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


class TorchRuntime:
    """The torch port of the two networks on ``device``."""

    name = "torch"

    def __init__(self, device: str = "cpu"):
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self.nets = load_networks(str(self.device))

    def _run(self, crops: np.ndarray, net) -> list[np.ndarray]:
        torch = self._torch
        cpu = self.device.type == "cpu"
        with one_thread() if cpu else nullcontext():
            # (B, S, S, 3) uint8 -> (B, 3, S, S) float in [0, 1], channels-last in memory (no copy)
            x = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
            with torch.inference_mode():
                out = net(x)
            return [o.float().cpu().numpy() for o in out]

    def mesh(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points, logits = self._run(crops, self.nets[0])
        return points, logits

    def iris(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        contour, iris = self._run(crops, self.nets[1])
        return contour, iris


@functools.lru_cache(maxsize=4)
def load_networks(device: str = "cpu"):
    """The torch port's two networks (``FaceMeshNet``, ``IrisNet``) with the shipped weights, in eval mode on
    ``device``, loaded once per process."""
    import torch
    from safetensors.torch import load_file

    from fsth.landmarks.mesh_nets import FaceMeshNet, IrisNet

    path = model_path("mesh").parent / "face_mesh.safetensors"
    if not path.is_file():
        raise MissingWeightsError(f"the mesh backend's weights are missing: {path} (reinstall fsth)")
    tensors = load_file(str(path))
    nets = []
    for prefix, net in (("mesh.", FaceMeshNet()), ("iris.", IrisNet())):
        net.load_state_dict({k[len(prefix) :]: v.float() for k, v in tensors.items() if k.startswith(prefix)})
        nets.append(net.eval().to(device, memory_format=torch.channels_last))  # 1.3-1.6x faster on a CPU
    return nets[0], nets[1]
