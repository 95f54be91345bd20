"""Evaluation metrics: generated frames vs real ones -> named figures (``fsth evaluate`` builds on these).

Modules, one per metric family:

``registry``   ``Frames``, the record every metric scores; ``make_metrics(names)`` / ``make_metric(name)``:
               accumulators by name (``update(frames)`` as batches come, ``result()`` -> ``MetricResult``);
               ``register_metric`` for new ones
``pixel``      ``ssim``, ``psnr``, ``mean_l1`` on face crops (self-reenactment); metrics "ssim", "psnr", "l1"
``identity``   "csim": cosine similarity of face-recognition embeddings (dlib's 128-d ResNet offline, or ArcFace)
``arcface``    insightface's arcface_torch iresnet and the 5-point alignment, for CSIM with a user's model file
``keypoints``  "akd": mean landmark distance at 256x256, with the detection-failure rate
``inception``  FID's Inception-v3 (pytorch-fid's weights file layout)
``fid``        "fid": streaming feature statistics and the Frechet distance
``summary``    ``summarize(values)`` -> mean, std, count (and missing) for report tables

Images are uint8 RGB, (H, W, 3) or batches (N, H, W, 3), generated and real frames in matching order; each
metric says which fields of the record it needs (``Metric.needs``: real frames, or what replaces them). Each
result names the network (and weights file) that measured it; a face that cannot be found is counted, not a
crash; FID without its weights says why and leaves the other metrics running.
"""

# The import order is the registration order: how metrics are listed in reports and errors.
# isort: off
from fsth.metrics.registry import (
    DEFAULT_METRICS,
    Frames,
    Metric,
    MetricResult,
    PairMetric,
    available_metrics,
    make_metric,
    make_metrics,
    parse_metric_names,
    register_metric,
)
from fsth.metrics.pixel import L1, PSNR, SSIM, mean_l1, psnr, ssim
from fsth.metrics.identity import CSIM, cosine_similarity, make_face_embedder
from fsth.metrics.recognition import FaceEmbedder
from fsth.metrics.keypoints import AKD, keypoint_distance
from fsth.metrics.fid import FID, FeatureStats, frechet_distance
from fsth.metrics.summary import Summary, summarize
# isort: on

__all__ = [
    "AKD",
    "CSIM",
    "DEFAULT_METRICS",
    "FID",
    "FaceEmbedder",
    "FeatureStats",
    "Frames",
    "L1",
    "Metric",
    "MetricResult",
    "PSNR",
    "PairMetric",
    "SSIM",
    "Summary",
    "available_metrics",
    "cosine_similarity",
    "frechet_distance",
    "keypoint_distance",
    "make_face_embedder",
    "make_metric",
    "make_metrics",
    "mean_l1",
    "parse_metric_names",
    "psnr",
    "register_metric",
    "ssim",
    "summarize",
]
