"""An extraction directory's fingerprint (``videobert.utils.fingerprint``): the weights' digest and
the clip settings decide every feature; batch size, workers, device and ranks do not."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from videobert.utils.fingerprint import FINGERPRINT_FILE, Fingerprint, claim_output, digest_of, read_fingerprint

if TYPE_CHECKING:
    from videobert.features.extract import ExtractConfig


def extract_fingerprint(config: "ExtractConfig") -> Fingerprint:
    """What decides ``config``'s features (the weights file is read and checked here)."""
    from videobert.features.weights import weights_identity

    return {"stage": "extract", "weights": weights_identity(config.weights, config.seed), "size": config.size,
            "fps": float(config.fps), "clip_frames": config.clip_frames, "partial": config.partial,
            "backend": config.backend}


def clear_extract_outputs(out: Path) -> None:
    """Delete an extraction's outputs: feature files (finished and temporary), manifests, the matrix cache."""
    for path in [*out.glob("*.safetensors"), *out.glob(".*.safetensors.*.tmp"), *out.glob("manifest*.jsonl")]:
        path.unlink(missing_ok=True)
    shutil.rmtree(out / ".matrix", ignore_errors=True)


def claim_extract_output(config: "ExtractConfig") -> None:
    """Resume ``config.out`` only if it was extracted the same way (else ``StaleOutputError``;
    ``config.overwrite`` deletes the old features first)."""
    out = Path(config.out)
    claim_output(out / FINGERPRINT_FILE, "extract", extract_fingerprint(config), overwrite=config.overwrite,
                 clear=lambda: clear_extract_outputs(out))


def features_fingerprint(features_dir: str | Path) -> Fingerprint:
    """What a downstream stage reads from a feature directory: how it was extracted and which
    videos it holds (names and sizes of the finished files)."""
    from videobert.features.store import feature_path, finished_video_ids

    features_dir = Path(features_dir)
    videos = {v: feature_path(features_dir, v).stat().st_size for v in finished_video_ids(features_dir)}
    return {"extract": read_fingerprint(features_dir / FINGERPRINT_FILE), "videos": len(videos), "files": digest_of(videos)}
