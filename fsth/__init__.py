"""fsth: few-shot neural talking heads.

An implementation of "Few-Shot Adversarial Learning of Realistic Neural Talking Head Models"
(Zakharov et al., ICCV 2019). The stages, in data-flow order; a module imports only from the stages above it
(``tests/test_layers.py`` holds the order and checks it):

0. the ground every stage stands on: ``fsth.errors`` (what the user is told), ``fsth.console`` (stderr: messages,
   progress), ``fsth.config`` (model, training and option dataclasses), ``fsth.device``, ``fsth.files`` (outputs
   written safely), ``fsth.hub`` (other projects' weights files), ``fsth.distributed``; ``fsth.weights`` holds the
   shipped model and the face mesh's weights
1. ``fsth.video``      read frames / fps / audio from videos and images, write mp4
2. ``fsth.landmarks``  face landmarks (mesh, dlib, FAN), tracking, the one crop policy, the one sketch renderer,
                       retargeting
3. ``fsth.models``     embedder E, AdaIN generator G, projection discriminator D, the warp; ``fsth.losses`` and
                       ``fsth.gan`` (a GAN step's two halves); ``fsth.checkpoint`` (the one file format)
4. ``fsth.metrics``    SSIM, PSNR, L1, CSIM, AKD, FID by name
5. ``fsth.train``      meta-learning over many videos -> meta checkpoint; its input is built by ``fsth.dataset``
                       (videos -> face crops + landmarks), read as episodes by ``fsth.episodes``, its outputs
                       kept in a run directory by ``fsth.rundir``
6. ``fsth.fewshot``    a checkpoint and a SOURCE (photos, a video, an embedding or a person file) -> a person that
                       renders landmarks into frames: shots, embedding, fine-tuning, the renderer
7. ``fsth.animate``    driving video or camera -> landmarks -> retargeted -> rendered -> composed -> mp4
   ``fsth.evaluate``   the paper's protocols over held-out videos
8. ``fsth.cli``        the ``fsth`` command: one thin function per subcommand

Importing ``fsth`` is cheap: heavy libraries (torch, cv2, dlib) load in the stage modules.
"""

__version__ = "0.1.0"


def lazy_exports(package: str, modules: dict[str, tuple[str, ...]]):
    """A package's module ``__getattr__`` for the names its submodules export (``modules``: submodule -> names):
    each name imports its submodule when first used, so that a light submodule (option dataclasses) is read without
    loading the heavy ones (torch)."""
    import importlib
    import sys

    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
