"""The captioner's inputs, the rows of the paper's captioning table.

Each variant is a sequence of per-clip vectors (Zhou et al.'s encoder reads a sequence of
per-frame features; its attention does the pooling the paper's averaging does by hand):

    variant            per clip                                       width
    s3d                S3D feature                                    1024
    <family>           the model's clip features in context           TaskScoring.clip_feature_dim
    <family>+s3d       [the model's clip features ; S3D feature]      clip_feature_dim + 1024

``<family>`` is the model family's name; for VideoBERT ("videobert") the clip features are the
paper's fill-in template recipe (``videobert.models.videobert.template``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

VARIANTS = ("s3d", "videobert", "videobert+s3d")  # VideoBERT's rows of the table


def variants_of(family: str) -> tuple[str, ...]:
    """The captioning variants of a model family: S3D alone, the model's features, both."""
    return ("s3d", family, f"{family}+s3d")


def variant_inputs(variant: str, s3d: Sequence[np.ndarray], model_features: Sequence[np.ndarray] | None
                   ) -> list[np.ndarray]:
    """The captioner's inputs of one variant: per segment ``[n, width]`` float32 (widths in the module
    docstring) from its clips' S3D features ``[n, 1024]`` and the model's clip features ``[n, D]``."""
    from videobert.models import FAMILIES

    if variant != "s3d" and variant.removesuffix("+s3d") not in FAMILIES:
        raise ValueError(f"unknown captioning variant {variant!r}: 's3d', a model family ({', '.join(FAMILIES)}) "
                         f"or a family + '+s3d'")
    if variant == "s3d":
        return [np.asarray(f, dtype=np.float32) for f in s3d]
    if model_features is None:
        raise ValueError(f"variant {variant!r} needs the model's clip features")
    if variant.endswith("+s3d"):
        return [np.concatenate([v, f], axis=1).astype(np.float32) for v, f in zip(model_features, s3d)]
    return [np.asarray(v, dtype=np.float32) for v in model_features]
