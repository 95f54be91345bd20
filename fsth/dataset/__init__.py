"""The dataset of meta-learning: a tree of videos -> face crops (JPEG) + landmarks, one file per video.

``build``  ``find_videos`` (tree -> videos and persons), ``process_video`` (one video -> its record) and
           ``build_dataset`` (a whole tree: parallel, resumable, sharded, bad videos skipped and reported);
           what ``fsth landmarks VIDEO_TREE --dataset DIR`` runs
``store``  the on-disk layout: ``dataset.json`` (``DatasetSettings``), one safetensors record per video
           (``VideoRecord``), manifests and reports; ``Dataset`` opens a built dataset for training

``fsth.episodes`` turns a ``Dataset`` into training episodes.
"""

from fsth.dataset.build import BuildSummary, VideoSpec, build_dataset, find_videos, run_build, shard_of
from fsth.dataset.options import BuildOptions, parse_shard
from fsth.dataset.store import Dataset, DatasetSettings, VideoEntry, VideoRecord

__all__ = [
    "BuildOptions",
    "BuildSummary",
    "Dataset",
    "DatasetSettings",
    "VideoEntry",
    "VideoRecord",
    "VideoSpec",
    "build_dataset",
    "find_videos",
    "parse_shard",
    "run_build",
    "shard_of",
]
