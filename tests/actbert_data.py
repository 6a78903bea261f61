"""A small ActBERT data set for the tests: a corpus built by ``build_corpus`` from narrated videos,
their S3D-store feature files and region files written through the real store APIs (random
features; boxes inside the frame; every 5th clip without regions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videobert.corpus import CorpusConfig, build_corpus
from videobert.features.regions.store import VideoRegions, write_video_regions
from videobert.features.store import write_video_features
from videobert.text import Cue, WordPieceTokenizer, write_subset_vocab

VERBS = ("cut", "stir", "pour", "fold")
NOUNS = ("onion", "soup", "milk", "dough")
CLASSES = ("background", *NOUNS)
ACTION_DIM, REGION_DIM = 24, 12
CLIPS, WIDTH, HEIGHT = 24, 64, 48


def video_regions(video_id: str, times: np.ndarray, rng: np.random.Generator) -> VideoRegions:
    counts = [0 if clip % 5 == 0 else int(rng.integers(1, 4)) for clip in range(len(times))]
    total = sum(counts)
    x1, y1 = rng.uniform(0, WIDTH / 2, total), rng.uniform(0, HEIGHT / 2, total)
    boxes = np.stack([x1, y1, x1 + rng.uniform(4, WIDTH / 2, total), y1 + rng.uniform(4, HEIGHT / 2, total)], axis=1)
    probs = rng.dirichlet(np.ones(len(CLASSES)), total)
    return VideoRegions(video_id, boxes.astype(np.float32), rng.normal(size=(total, REGION_DIM)).astype(np.float32),
                        probs.astype(np.float32), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                        rng.normal(size=(len(times), REGION_DIM)).astype(np.float32), times, WIDTH, HEIGHT,
                        "test", list(CLASSES))


def make_dataset(root: Path, videos: int = 10) -> dict[str, Path]:
    """``{"corpus", "features", "actions", "vocab"}`` under ``root``: ``videos`` videos of 24 clips
    (1.5 s) and 5 narrated sentences each ("now cut the onion."), about a fifth held out; the text
    vocabulary is BERT's cut down to the sentences' pieces (small models train faster)."""
    rng = np.random.default_rng(0)
    features = root / "features"
    inputs = []
    for v in range(videos):
        video_id = f"video{v:02d}"
        times = np.stack([np.arange(CLIPS) * 1.5, np.arange(CLIPS) * 1.5 + 1.5], axis=1)
        write_video_features(features, video_id, rng.normal(size=(CLIPS, ACTION_DIM)).astype(np.float32), times)
        write_video_regions(features / "regions", video_regions(video_id, times, rng))
        cues = [Cue(7.0 * i, 7.0 * i + 6.0, f"now {VERBS[(v + i) % 4]} the {NOUNS[(v * i) % 4]}.") for i in range(5)]
        inputs.append((video_id, rng.integers(0, 16, CLIPS), times, cues))
    write_subset_vocab([f"now {verb} the {noun}." for verb in VERBS for noun in NOUNS], root / "vocab.txt")
    build_corpus(inputs, root / "corpus", CorpusConfig(num_visual_words=16, heldout_fraction=0.2, seed=1),
                 WordPieceTokenizer(root / "vocab.txt"))
    actions = root / "verbs.txt"
    actions.write_text("\n".join(VERBS) + "\n", encoding="utf-8")
    return {"corpus": root / "corpus", "features": features, "actions": actions, "vocab": root / "vocab.txt"}
