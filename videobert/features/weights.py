"""Which S3D weights an extraction runs, checked before any video is decoded.

The Kinetics-400 weights are torchvision's ``S3D_Weights.KINETICS400_V1``, the file
``s3d-d76dad2f.pth`` (torchvision downloads it to ``~/.cache/torch/hub/checkpoints/``). Like every
torch.hub file, its name carries the first hex digits of its SHA-256 (``name-<digits>.ext``): a file
whose name has such digits must have a matching digest, so a truncated or swapped download is
refused instead of silently giving wrong features.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from videobert.utils.fingerprint import sha256_file

TORCHVISION_FILE = "s3d-d76dad2f.pth"
TORCHVISION_URL = "https://download.pytorch.org/models/s3d-d76dad2f.pth"
# torch.hub's convention (torch.hub.HASH_REGEX), with at least 8 digits so that a name such as
# "s3d-v2.pth" is not taken for a digest.
_DIGEST_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")


def digest_prefix_in_name(path: str | os.PathLike) -> str | None:
    """The SHA-256 prefix a torch.hub-style file name carries (``s3d-d76dad2f.pth`` -> ``d76dad2f``)."""
    match = _DIGEST_IN_NAME.search(Path(path).name)
    return match.group(1) if match else None


def check_weights_file(path: str | os.PathLike) -> str:
    """The weights file's full SHA-256 (hex), after checking it exists and, when its name carries
    a digest prefix, that the digest starts with it. Raises ``FileNotFoundError`` / ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"S3D weights file not found: {path} (torchvision's S3D_Weights.KINETICS400_V1 "
                                f"is {TORCHVISION_FILE}, from {TORCHVISION_URL})")
    digest = sha256_file(path)
    prefix = digest_prefix_in_name(path)
    if prefix is not None and not digest.startswith(prefix):
        raise ValueError(f"{path}: its name says SHA-256 {prefix}..., the file's is {digest[:len(prefix)]}... "
                         f"(a truncated or different download); fetch {TORCHVISION_URL} again")
    return digest


def weights_identity(weights: str | os.PathLike | None, seed: int) -> str:
    """What an extraction's features depend on: ``sha256:<hex>`` of the weights file, or the seed
    of random weights."""
    return f"sha256:{check_weights_file(weights)}" if weights else f"random(seed={seed})"
