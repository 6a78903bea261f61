"""The captioning task end to end: features of the annotated segments, one captioner per variant
and seed trained on the training subset, captions of the evaluation subset, COCO metrics.

Outputs in ``out_dir``: ``captions.json`` (per evaluated segment: id, time span, references, the
caption of each variant from the first seed's captioner), ``metrics.json`` (per variant the seven
metrics as the median over seeds and each seed's values; the most-common-training-caption
baseline; segment counts and skips; timings), ``captioners/<variant>/`` (the first seed's
checkpoint), ``runs/`` (each captioner's captions: a rerun resumes) and ``captions.png``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from videobert.tasks.annotations import Segment, read_youcook_annotations
from videobert.tasks.captioning.data import VideoClips, select_segments
from videobert.tasks.captioning.features import variant_inputs, variants_of
from videobert.tasks.captioning.metrics import METRICS, caption_metrics_many, start_metrics
from videobert.tasks.captioning.train import CaptionerTrainConfig, train_captioner
from videobert.tasks.captioning.vocabulary import caption_words
from videobert.tasks.scoring import task_scoring
from videobert.utils.io import write_json_atomic

log = logging.getLogger(__name__)

BASELINE = "most_common_caption"


@dataclass
class CaptioningSettings:
    variants: tuple[str, ...] = ()    # () = all of the model's: s3d, its family's features, both (variants_of)
    seeds: tuple[int, ...] = (0,)     # one captioner per variant and seed
    train: CaptionerTrainConfig = field(default_factory=CaptionerTrainConfig)
    beam_size: int = 5
    length_penalty: float = 0.0
    examples: int = 6                 # segments drawn in captions.png
    device: str = "cpu"


def split_annotations(path: str | os.PathLike, train_subset: str, eval_subset: str) -> tuple[list[Segment], list[Segment]]:
    """The training and evaluation segments of a YouCook II-format file; ``ValueError`` naming the
    file and the subsets it has when either subset holds no segment."""
    segments = read_youcook_annotations(path)
    subsets = Counter(s.subset for s in segments)
    for name in (train_subset, eval_subset):
        if not subsets[name]:
            raise ValueError(f"{path}: no annotated segment in subset {name!r}; its subsets: "
                             f"{', '.join(f'{k!r} ({n})' for k, n in sorted(subsets.items())) or 'none'}")
    return [s for s in segments if s.subset == train_subset], [s for s in segments if s.subset == eval_subset]


def most_common_caption(captions: Sequence[str]) -> str:
    """The most frequent caption (compared as lower-cased words; ties: the first seen)."""
    return Counter(" ".join(caption_words(c)) for c in captions).most_common(1)[0][0]


def _summary(per_seed: list[dict[str, float]], seeds: Sequence[int]) -> dict:
    """The seven metrics as their median over seeds, and each seed's values (in ``seeds`` order)."""
    out: dict = {m: float(np.median([s[m] for s in per_seed])) for m in METRICS}
    out["per_seed"] = {m: [s[m] for s in per_seed] for m in METRICS}
    out["seeds"] = list(seeds)
    return out


def _fingerprint(train_inputs: Sequence[np.ndarray], eval_inputs: Sequence[np.ndarray], captions: Sequence[str]) -> str:
    """A digest of everything a captioner run reads besides its settings."""
    digest = hashlib.sha256()
    for array in (*train_inputs, *eval_inputs):
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    digest.update("\n".join(captions).encode())
    return digest.hexdigest()


def _captioner_run(variant: str, seed: int, train_inputs: Sequence[np.ndarray], captions: Sequence[str],
                   eval_inputs: Sequence[np.ndarray], digest: str, settings: CaptioningSettings, out: Path, save: bool
                   ) -> dict:
    """Train one captioner and caption the evaluation segments: ``{"captions", "seconds", "caption_tokens"}``.
    A finished run is recorded in ``out/runs/<variant>@<seed>.json`` and reused by a rerun with the same
    settings and inputs (a killed job loses at most the captioner in training). ``save``: also write the
    checkpoint to ``out/captioners/<variant>/``."""
    train_config = replace(settings.train, seed=seed)
    key = {"train": dataclasses.asdict(train_config), "beam_size": settings.beam_size,
           "length_penalty": settings.length_penalty, "inputs": digest, "checkpoint": save}
    path = out / "runs" / f"{variant}@{seed}.json"
    if path.exists():
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("key") == key:
            log.info("captioning: %s seed %d done in an earlier run, reused", variant, seed)
            return record
    result = train_captioner(train_inputs, captions, train_config, settings.device)
    generated = result.captioner.generate(eval_inputs, settings.beam_size, length_penalty=settings.length_penalty)
    if save:
        result.captioner.save_pretrained(out / "captioners" / variant)
    record = {"key": key, "captions": generated, "seconds": result.seconds, "caption_tokens": result.caption_tokens}
    write_json_atomic(path, record)
    return record


def run_captioning(model, tokenizer, clips: Mapping[str, VideoClips], train_segments: Sequence[Segment],
                   eval_segments: Sequence[Segment], out_dir: str | os.PathLike,
                   settings: CaptioningSettings = CaptioningSettings(),
                   videos_dirs: Sequence[str | os.PathLike] = ()) -> dict:
    """Train and score a captioner per variant and seed; write the outputs listed in the module
    docstring; return the content of ``metrics.json``.

    ``model``: a trained model of any family or its task hooks (``videobert.tasks.scoring``), whose
    ``clip_features`` give the family's variants (may be ``None`` when ``settings.variants`` is only
    ``("s3d",)``); ``tokenizer``: its WordPiece tokenizer; ``clips``: see :func:`load_video_clips`
    (their ``words`` are the clips as the model reads them: VideoBERT's visual words, or store rows).
    ``videos_dirs``: where ``captions.png`` finds the videos' frames (grey tiles without them).
    """
    from videobert.tasks.captioning.pictures import draw_captions

    hooks = task_scoring(model, tokenizer) if model is not None else None
    known = variants_of(hooks.family) if hooks is not None else ("s3d",)
    settings = replace(settings, variants=settings.variants or known)
    unknown = [v for v in settings.variants if v not in known]
    if unknown or not settings.seeds:
        raise ValueError(f"variants must be among {known} (the model's) and seeds non-empty, got {settings.variants}, "
                         f"{settings.seeds}")
    start_metrics()  # fails at once without Java; METEOR loads while the captioners train
    encoder = hooks if any(v != "s3d" for v in settings.variants) else None
    max_clips = encoder.max_feature_clips if encoder else sys.maxsize
    train, train_skipped = select_segments(train_segments, clips, max_clips, "training")
    heldout, eval_skipped = select_segments(eval_segments, clips, max_clips, "evaluation")
    if not train or not heldout:
        raise ValueError(f"captioning needs segments with clips to train and to evaluate on: {len(train)} training "
                         f"(skipped {train_skipped}) and {len(heldout)} evaluation (skipped {eval_skipped})")
    started = time.perf_counter()
    s3d = {name: [clips[s.video_id].features[s.rows] for s in segs] for name, segs in (("train", train), ("eval", heldout))}
    model_features = {name: encoder.clip_features([clips[s.video_id].words[s.rows] for s in segs]) if encoder else None
                      for name, segs in (("train", train), ("eval", heldout))}
    feature_seconds = time.perf_counter() - started

    references = {s.segment_id: [s.caption] for s in heldout}
    candidate_sets: dict[str, dict[str, str]] = {}
    first_captions: dict[str, list[str]] = {}
    training = {}
    out = Path(out_dir)
    for variant in settings.variants:
        train_inputs = variant_inputs(variant, s3d["train"], model_features["train"])
        eval_inputs = variant_inputs(variant, s3d["eval"], model_features["eval"])
        digest = _fingerprint(train_inputs, eval_inputs, [s.caption for s in train])
        seconds, tokens = 0.0, 0
        for seed in settings.seeds:
            run = _captioner_run(variant, seed, train_inputs, [s.caption for s in train], eval_inputs, digest, settings,
                                 out, save=seed == settings.seeds[0])
            candidate_sets[f"{variant}@{seed}"] = {s.segment_id: c for s, c in zip(heldout, run["captions"])}
            first_captions.setdefault(variant, run["captions"])
            seconds, tokens = seconds + run["seconds"], tokens + run["caption_tokens"]
        training[variant] = {"input_dim": int(train_inputs[0].shape[1]), "seconds": round(seconds, 2),
                             "caption_tokens_per_second": round(tokens / seconds, 1) if seconds else None}
    baseline = most_common_caption([s.caption for s in train])
    candidate_sets[BASELINE] = {s.segment_id: baseline for s in heldout}
    started = time.perf_counter()
    scores = caption_metrics_many(references, candidate_sets)
    metric_seconds = time.perf_counter() - started

    metrics: dict = {v: _summary([scores[f"{v}@{seed}"] for seed in settings.seeds], settings.seeds)
                     for v in settings.variants}
    metrics[BASELINE] = {**scores[BASELINE], "caption": baseline}
    metrics["segments"] = {"train": len(train), "eval": len(heldout)}
    metrics["skipped"] = {"train": train_skipped, "eval": eval_skipped}
    metrics["training"] = training
    metrics["seconds"] = {"features": round(feature_seconds, 2), "metrics": round(metric_seconds, 2)}
    metrics["segment_features_per_second"] = round((len(train) + len(heldout)) / feature_seconds, 1) if encoder else None
    metrics["settings"] = {"variants": list(settings.variants), "beam_size": settings.beam_size, "steps": settings.train.steps,
                           "batch_size": settings.train.batch_size, "lr": settings.train.lr}
    write_json_atomic(out / "metrics.json", metrics)
    write_json_atomic(out / "captions.json", [
        {"segment_id": s.segment_id, "video_id": s.video_id, "start": s.start, "end": s.end, "references": [s.caption],
         "generated": {v: first_captions[v][i] for v in settings.variants}} for i, s in enumerate(heldout)])
    shown = list(range(0, len(heldout), max(1, len(heldout) // max(1, settings.examples))))[: settings.examples]
    draw_captions([(heldout[i], clips[heldout[i].video_id].times[heldout[i].rows],
                    {v: first_captions[v][i] for v in settings.variants}) for i in shown], videos_dirs, out / "captions.png")
    return metrics
