"""The networks of the paper (stage 3 of the data flow) and what every later stage needs around them.

- ``Embedder`` E(x, y) -> e; ``Embedder.embed_shots`` -> e_hat, the mean over K shots
- ``Generator`` G(y, e_hat) with psi_hat = P e_hat; ``PersonGenerator`` G'(y) with its own psi'
- ``Discriminator`` D(x, y, i) -> (score, feats) with one row W_i per video; ``PersonDiscriminator`` D'
- ``MouthDiscriminator`` D_mouth(x, y, points) -> (score, feats) on the mouth's crop (training the warp-guided G)
- ``person_generator`` / ``person_discriminator``: the fine-tuning start from the meta networks
- ``inference_generator``: the fast inference form of G for one person
- ``warp_shots`` / ``warped_source``: the landmark-driven warp (``fsth.models.warp``) the warp-guided G builds on
- ``VGG19`` / ``VGGFace`` and their loaders: the frozen perceptual networks of the content loss
- ``images_to_tensor`` / ``tensor_to_images``: uint8 RGB images <-> (B, 3, H, W) tensors in [-1, 1]

Frames and landmark images are (B, 3, H, W) float tensors in [-1, 1] everywhere.
"""

from fsth.models.discriminator import Discriminator, MouthDiscriminator, PersonDiscriminator
from fsth.models.embedder import Embedder
from fsth.models.generator import Generator, PersonGenerator
from fsth.models.images import images_to_tensor, tensor_to_images
from fsth.models.inference import InferenceGenerator, inference_generator
from fsth.models.perceptual import VGG19, ContentNetworks, VGGFace, load_content_networks, load_vgg19, load_vggface
from fsth.models.person import person_discriminator, person_generator
from fsth.models.warp import warp_shots

__all__ = [
    "ContentNetworks",
    "Discriminator",
    "Embedder",
    "Generator",
    "InferenceGenerator",
    "MouthDiscriminator",
    "PersonDiscriminator",
    "PersonGenerator",
    "VGG19",
    "VGGFace",
    "count_parameters",
    "images_to_tensor",
    "inference_generator",
    "load_content_networks",
    "load_vgg19",
    "load_vggface",
    "person_discriminator",
    "person_generator",
    "tensor_to_images",
    "warp_shots",
    "warped_source",
]


def warped_source(cfg, shots_x, shots_points, points):
    """What the warp-guided G takes besides y and e_hat: the nearest of the shots (B, K, 3, S, S), with landmarks
    ``shots_points`` (B, K, 68, 2), warped to the target's ``points`` (B, 68, 2); None for the paper's G."""
    if not cfg.warp:
        return None
    if shots_points is None or points is None:
        raise ValueError("the warp-guided generator needs the shots' and the target's landmarks")
    return warp_shots(shots_x, shots_points, points)


def count_parameters(module) -> int:
    """Number of parameter entries (spectral norm's u, v buffers excluded)."""
    return sum(p.numel() for p in module.parameters())
