"""Synthetic "instructional videos" with narration: the demo's built-in data set.

Each video is a sequence of action segments separated by short empty pauses. In a segment one
object (a shape with its own colour, `scenes.OBJECTS`) does one action (`scenes.ACTIONS`) for 4.5
to 7 s, and the narrator says what happens while it happens, mostly in the words of the paper's
zero-shot prompt ("now let me show you how to spin the square."). The videos are real files
encoded with PyAV in several codecs, frame rates and sizes; training videos come with a WebVTT
transcript (a few on purpose without one, for the video-only stream); held-out videos come with
YouCook II-style annotations (short imperative descriptions, "spin the red square"), the verb and
object vocabularies, and their narration too (what ASR would give for them: the alignment
evaluation pairs held-out video with it; training never reads it).

Layout written by `generate_dataset(out_dir, config)`::

    train/videos/train_000.mp4 ...      train/transcripts/train_000.vtt ...
    train/annotations.json              (YouCook II format, subset "training": what the captioner learns from)
    heldout/videos/heldout_000.webm ... heldout/annotations.json   (YouCook II format)
    heldout/transcripts/heldout_000.vtt ...
    verbs.txt  objects.txt              one word a line
    vocab.txt                           the WordPiece vocabulary of everything the demo says (below)
    scripts.json                        the ground truth of every video (segments, codec, fps, size)

The text vocabulary is BERT's uncased WordPiece cut down to the pieces of the demo's language
(every narration sentence the generator can say, the zero-shot prompt, the class names; see
`videobert.text.subset_vocab`): ~150 ids instead of 30,522, which makes a small model's step
several times cheaper on a CPU and tokenises the demo's text exactly as BERT's vocabulary does.

Everything is a function of the seed; files are written atomically and a rerun skips the videos
that already exist.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from videobert.demo.scenes import OBJECTS, SHAPES, VERBS, Placement, render_frame
from videobert.text import write_subset_vocab
from videobert.utils.io import atomic_path, write_json_atomic, write_text_atomic

# codec name -> (FFmpeg encoder, container format, file extension, encoder options)
CODECS = {
    "h264": ("libx264", "mp4", ".mp4", {"preset": "ultrafast", "crf": "20"}),
    "mpeg4": ("mpeg4", "avi", ".avi", {}),
    "vp9": ("libvpx-vp9", "webm", ".webm", {"deadline": "realtime", "cpu-used": "8", "crf": "24", "b": "0"}),
}
FRAME_RATES = (20, 25, 30)
# One plain grey for every video: with random S3D weights, shades of an empty stage would each
# take visual words away from the actions.
BACKGROUND = (64, 64, 64)
FRAME_SIZES = ((96, 96), (128, 96), (112, 112))  # (width, height); wide frames keep the stage in the centre

NARRATION = (  # (weight, template): most sentences follow the zero-shot prompt's wording
    (5, "now let me show you how to {verb} the {noun}."),
    (2, "let me show you how to {verb} the {noun}."),
    (1, "now i will {verb} the {colour} {noun}."),
    (1, "watch how to {verb} the {noun}."),
    (1, "this is how you {verb} the {noun}."),
)
FILLERS = ("okay.", "that was easy.", "let us keep going.", "pretty simple right.", "here comes the next one.")


@dataclass
class SyntheticConfig:
    """Size of the synthetic data set. Defaults: ~30 min of video, ~1,500 training clips of 1.5 s."""

    n_train: int = 96
    n_heldout: int = 24
    untranscribed_fraction: float = 0.15   # training videos without a transcript
    segments_per_video: tuple[int, int] = (3, 4)       # inclusive range
    segment_seconds: tuple[float, float] = (4.5, 7.0)
    pause_seconds: tuple[float, float] = (0.5, 1.5)
    filler_rate: float = 0.4                # pauses that get an unrelated sentence
    seed: int = 0


@dataclass
class Segment:
    start: float    # seconds
    end: float
    verb: str
    noun: str
    x: float        # resting place on the stage (fractions) and angle (radians)
    y: float
    angle: float
    sentence: str     # what the narrator says while it happens
    description: str  # what a YouCook II annotator would write ("spin the red square")


@dataclass
class VideoScript:
    video_id: str
    split: str      # "train" or "heldout"
    codec: str
    fps: int
    width: int
    height: int
    duration: float  # seconds
    background: tuple[int, int, int]
    has_transcript: bool
    segments: list[Segment] = field(default_factory=list)
    fillers: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, text) in pauses

    @property
    def file_name(self) -> str:
        return self.video_id + CODECS[self.codec][2]


def _pick(rng: np.random.Generator, items: tuple) -> object:
    return items[int(rng.integers(len(items)))]


def language() -> list[str]:
    """Every sentence the narrator can say, and the zero-shot prompt with every verb and object."""
    from videobert.tasks.zero_shot import PROMPT_MIDDLE, PROMPT_PREFIX

    said = [template.format(verb=verb, noun=noun, colour=OBJECTS[noun][1])
            for _, template in NARRATION for verb in VERBS for noun in SHAPES]
    asked = [f"{PROMPT_PREFIX} {verb} {PROMPT_MIDDLE} {noun}." for verb in VERBS for noun in SHAPES]
    return said + list(FILLERS) + asked


def make_script(video_id: str, split: str, rng: np.random.Generator, config: SyntheticConfig) -> VideoScript:
    """Draw one video's codec, size, segments and narration."""
    width, height = _pick(rng, FRAME_SIZES)
    script = VideoScript(
        video_id=video_id, split=split, codec=str(_pick(rng, tuple(CODECS))), fps=int(_pick(rng, FRAME_RATES)),
        width=int(width), height=int(height), duration=0.0,
        background=BACKGROUND,
        has_transcript=split == "heldout" or rng.random() >= config.untranscribed_fraction,
    )
    weights = np.array([w for w, _ in NARRATION], dtype=float)
    t = 0.0
    for _ in range(int(rng.integers(config.segments_per_video[0], config.segments_per_video[1] + 1))):
        pause = float(rng.uniform(*config.pause_seconds))
        if rng.random() < config.filler_rate:
            script.fillers.append((round(t, 3), round(t + pause, 3), str(_pick(rng, FILLERS))))
        start = t + pause
        end = start + float(rng.uniform(*config.segment_seconds))
        verb, noun = str(_pick(rng, VERBS)), str(_pick(rng, SHAPES))
        template = NARRATION[int(rng.choice(len(NARRATION), p=weights / weights.sum()))][1]
        sentence = template.format(verb=verb, noun=noun, colour=OBJECTS[noun][1])
        script.segments.append(Segment(
            start=round(start, 3), end=round(end, 3), verb=verb, noun=noun,
            x=float(rng.uniform(0.3, 0.7)), y=float(rng.uniform(0.3, 0.7)), angle=float(rng.uniform(0, 2 * np.pi)),
            sentence=sentence, description=f"{verb} the {OBJECTS[noun][1]} {noun}",
        ))
        t = end
    script.duration = round(t + float(rng.uniform(*config.pause_seconds)), 3)
    return script


def make_scripts(config: SyntheticConfig) -> list[VideoScript]:
    """All videos' scripts; video ``i`` of a split depends only on (seed, split, i)."""
    scripts = []
    for split, count in (("train", config.n_train), ("heldout", config.n_heldout)):
        for i in range(count):
            rng = np.random.default_rng([config.seed, 0 if split == "train" else 1, i])
            scripts.append(make_script(f"{split}_{i:03d}", split, rng, config))
    return scripts


def frames(script: VideoScript) -> Iterator[np.ndarray]:
    """The video's frames, ``uint8 [height, width, 3]`` each, at ``script.fps``."""
    n_frames = int(round(script.duration * script.fps))
    segments = iter(script.segments)
    current = next(segments, None)
    for index in range(n_frames):
        t = index / script.fps
        while current is not None and t >= current.end:
            current = next(segments, None)
        if current is None or t < current.start:
            yield render_frame(script.width, script.height, script.background)
        else:
            yield render_frame(
                script.width, script.height, script.background, current.noun, current.verb,
                t - current.start, Placement(current.x, current.y, current.angle),
            )


def encode_video(path: str | os.PathLike, script: VideoScript) -> None:
    """Encode ``script`` with its codec into ``path``, atomically."""
    import av

    encoder, container_format, _, options = CODECS[script.codec]
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format=container_format) as container:
            stream = container.add_stream(encoder, rate=script.fps, options=dict(options))
            stream.width, stream.height, stream.pix_fmt = script.width, script.height, "yuv420p"
            stream.codec_context.thread_count = 1  # one thread: the same bytes on every run
            if script.codec == "mpeg4":
                stream.bit_rate = 600_000
            for image in frames(script):
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def _timestamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def webvtt(script: VideoScript) -> str:
    """The narration as WebVTT: one cue per sentence, spoken while its action happens."""
    cues = sorted([(s.start, s.end, s.sentence) for s in script.segments] + list(script.fillers))
    lines = ["WEBVTT", ""]
    for start, end, text in cues:
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}", text, ""]
    return "\n".join(lines)


def youcook_annotations(scripts: list[VideoScript], subset: str = "validation") -> dict:
    """YouCook II's annotation format: ``database -> id -> {annotations, subset, duration}``.
    ``verb`` and ``object`` are given beside each sentence (YouCook II has neither)."""
    database = {}
    for script in scripts:
        database[script.video_id] = {
            "duration": script.duration,
            "subset": subset,
            "recipe_type": "synthetic",
            "video_url": script.file_name,
            "annotations": [
                {"id": i, "segment": [s.start, s.end], "sentence": s.description, "verb": s.verb, "object": s.noun}
                for i, s in enumerate(script.segments)
            ],
        }
    return {"database": database}


@dataclass
class SyntheticDataset:
    """Paths of a generated data set."""

    root: Path
    train_videos: Path
    train_transcripts: Path
    heldout_videos: Path
    heldout_transcripts: Path
    annotations: Path
    train_annotations: Path  # the training videos' annotations (subset "training"): the captioner learns from them
    verbs: Path
    objects: Path
    vocab: Path
    scripts: list[VideoScript]


def generate_dataset(out_dir: str | os.PathLike, config: SyntheticConfig = SyntheticConfig(), progress: bool = True) -> SyntheticDataset:
    """Write the data set described in the module docstring into ``out_dir``."""
    from tqdm import tqdm

    root = Path(out_dir)
    data = SyntheticDataset(
        root=root, train_videos=root / "train" / "videos", train_transcripts=root / "train" / "transcripts",
        heldout_videos=root / "heldout" / "videos", heldout_transcripts=root / "heldout" / "transcripts",
        annotations=root / "heldout" / "annotations.json", train_annotations=root / "train" / "annotations.json",
        verbs=root / "verbs.txt", objects=root / "objects.txt", vocab=root / "vocab.txt", scripts=make_scripts(config),
    )
    for script in tqdm(data.scripts, desc="generate videos", unit="video", disable=not progress):
        videos, transcripts = ((data.train_videos, data.train_transcripts) if script.split == "train"
                               else (data.heldout_videos, data.heldout_transcripts))
        if not (videos / script.file_name).exists():
            encode_video(videos / script.file_name, script)
        if script.has_transcript:
            write_text_atomic(transcripts / f"{script.video_id}.vtt", webvtt(script))
    write_json_atomic(data.annotations, youcook_annotations([s for s in data.scripts if s.split == "heldout"]))
    write_json_atomic(data.train_annotations, youcook_annotations([s for s in data.scripts if s.split == "train"], "training"))
    write_text_atomic(data.verbs, "\n".join(VERBS) + "\n")
    write_text_atomic(data.objects, "\n".join(SHAPES) + "\n")
    write_subset_vocab(language(), data.vocab)
    write_json_atomic(root / "scripts.json", {"config": dataclasses.asdict(config), "videos": [dataclasses.asdict(s) for s in data.scripts]})
    return data


def load_scripts(path: str | os.PathLike) -> list[VideoScript]:
    """Read back ``scripts.json``."""
    records = json.loads(Path(path).read_text(encoding="utf-8"))["videos"]
    scripts = []
    for record in records:
        record["segments"] = [Segment(**s) for s in record["segments"]]
        record["fillers"] = [tuple(f) for f in record["fillers"]]
        record["background"] = tuple(record["background"])
        scripts.append(VideoScript(**record))
    return scripts
