"""Which VideoPrism input path keeps the trainer busy (issue 18): examples per second of

- the clip store (``videobert extract --clips``): an example's clips gathered from the
  memory-mapped store, the way ``PairDataset`` / ``ClipDataset`` read them;
- decoding on the fly, as a DataLoader worker would: open the video and decode its clips with the
  same reader and clip grid as the store (PyAV, 4 frames a 1.5 s clip at 32 px) up to the example's;
- the trainer: the demo's stage-1 step (16 frames of 32 px, width 64, batch 32; forward, backward,
  AdamW), in examples per second.

An example is ``CLIPS`` consecutive clips (the demo's 16 frames) at a random place in one of the
videos. Videos: H.264, 30 s, 20 fps, 128 x 96 textured frames (the demo's kind), written with PyAV.

Run: ``pytest benchmarks/bench_videoprism_data.py -s`` or ``python benchmarks/bench_videoprism_data.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from timing import best_seconds, training_step
from videobert.models.videoprism import VideoPrismConfig, VideoPrismForPretraining
from videobert.models.videoprism.collator import VideoPrismCollator
from videobert.models.videoprism.demo import DemoSettings
from videobert.video.clip_store import ClipStore, clip_store_spec, write_clip_store
from videobert.video.reader import read_raw_clips
from videobert.video.synthetic import write_video

SETTINGS = DemoSettings()
CLIPS = SETTINGS.num_frames // SETTINGS.frames_per_clip   # clips an example spans
EXAMPLES = 32                                               # examples timed per round (one batch)
VIDEOS, SECONDS, FPS = 6, 30, 20


def make_videos(directory: Path) -> list[Path]:
    return [Path(write_video(directory / f"video{v}.mp4", "libx264", fps=FPS, frames=SECONDS * FPS, width=128,
                             height=96, textured=True)) for v in range(VIDEOS)]


def example_starts(store: ClipStore, seed: int = 0) -> list[tuple[int, int]]:
    """(video index, first clip) of each timed example."""
    rng = np.random.default_rng(seed)
    counts = [len(store.rows(v)) for v in store.video_ids]
    videos = rng.integers(len(counts), size=EXAMPLES)
    return [(int(v), int(rng.integers(counts[v] - CLIPS + 1))) for v in videos]


def from_store(store: ClipStore, starts: list[tuple[int, int]]) -> None:
    for video, first in starts:
        rows = store.rows(store.video_ids[video])[first : first + CLIPS]
        store.frames(rows).reshape(-1, store.size, store.size, 3).copy()


def decoded(paths: list[Path], starts: list[tuple[int, int]]) -> None:
    spec = clip_store_spec(SETTINGS.frames_per_clip, SETTINGS.image_size)
    for video, first in starts:
        clips = []
        for index, clip in enumerate(read_raw_clips(paths[video], spec, "pyav")):
            if index >= first:
                clips.append(clip.frames)
            if len(clips) == CLIPS:
                break
        np.stack(clips)


def trainer_step() -> Callable[[], float]:
    overrides = SETTINGS.model_overrides()
    overrides["text"]["vocab_size"] = 152   # the demo's WordPiece vocabulary
    config = VideoPrismConfig.tiny(**overrides)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    shape = (config.num_frames, config.image_size, config.image_size, 3)
    examples = [{"frames": rng.integers(0, 256, shape, dtype=np.uint8), "text_ids": rng.integers(5, 152, 10).tolist(),
                 "seed": k} for k in range(EXAMPLES)]
    return training_step(VideoPrismForPretraining(config).train(), VideoPrismCollator(config)(examples), lr=1e-3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("videoprism_data")
    paths = make_videos(root)
    write_clip_store(paths, root / "clips", SETTINGS.frames_per_clip, SETTINGS.image_size)
    store = ClipStore(root / "clips")
    return paths, store, example_starts(store)


def report(benchmark) -> None:
    benchmark.extra_info["examples_per_s"] = EXAMPLES / benchmark.stats.stats.min
    print(f"\n{benchmark.name}: {EXAMPLES / benchmark.stats.stats.min:,.0f} examples/s")


def test_clip_store_examples_per_second(benchmark, data):
    _, store, starts = data
    benchmark.pedantic(from_store, args=(store, starts), rounds=3, iterations=1, warmup_rounds=1)
    report(benchmark)


def test_decoding_on_the_fly_examples_per_second(benchmark, data):
    paths, _, starts = data
    benchmark.pedantic(decoded, args=(paths, starts), rounds=2, iterations=1, warmup_rounds=1)
    report(benchmark)


def test_trainer_examples_per_second(benchmark):
    benchmark.pedantic(trainer_step(), rounds=3, iterations=1, warmup_rounds=1)
    report(benchmark)


if __name__ == "__main__":
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_videos(Path(tmp))
        write_clip_store(paths, Path(tmp) / "clips", SETTINGS.frames_per_clip, SETTINGS.image_size)
        store = ClipStore(Path(tmp) / "clips")
        starts = example_starts(store)
        rates = {"clip store": EXAMPLES / best_seconds(lambda: from_store(store, starts), rounds=3),
                 "decoding on the fly (one worker)": EXAMPLES / best_seconds(lambda: decoded(paths, starts)),
                 "trainer (demo stage-1 step)": EXAMPLES / best_seconds(trainer_step(), rounds=3)}
    print("| path | examples/s |\n|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.1f} |")
    trainer = rates["trainer (demo stage-1 step)"]
    print(f"workers decoding on the fly to keep the trainer busy: {trainer / rates['decoding on the fly (one worker)']:.1f}; "
          f"the store feeds it {rates['clip store'] / trainer:,.0f}x over")
