"""The on-disk corpus: columnar ``.npy`` arrays, memory-mapped on reading.

Layout of a corpus directory::

    corpus.json        what is inside (counts per split, vocabulary sizes, build config); written
                       last, so a directory without it is an unfinished build
    manifest.jsonl     per video: done / failed (+ reason), its split, transcript status
    parts/             one .npz per finished video: the build's resumable state
    <split>/           "train" and "heldout", each with
      video_ids.json   ids, in the order of the rows below
      videos.npy       int64 [V, 4]   word_lo, word_hi, sentence_lo, sentence_hi (rows of the arrays below)
      words.npy        int32 [W]      visual words of all videos, in clip order
      text_ids.npy     int32 [T]      WordPiece ids of all sentences, no special tokens
      sentences.npy    int64 [S, 5]   video, text_lo, text_hi, word_lo, word_hi (a sentence's segment)
      sentence_times.npy float64 [S, 2]  start, end seconds
      chunks.npy       int64 [C, 3]   video, word_lo, word_hi: 16-word segments of every video

All ranges are half-open offsets into ``words`` / ``text_ids``. A video's sentences are stored
contiguously and in time order, so adjacent sentences are adjacent rows and their text is one slice.
Memory-mapping keeps a corpus far larger than memory usable by many DataLoader workers at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "videobert-corpus"
VERSION = 1
SPLITS = ("train", "heldout")
COLUMNS = {  # name -> (dtype, trailing shape)
    "videos": (np.int64, (4,)),
    "words": (np.int32, ()),
    "text_ids": (np.int32, ()),
    "sentences": (np.int64, (5,)),
    "sentence_times": (np.float64, (2,)),
    "chunks": (np.int64, (3,)),
}


@dataclass
class VideoPart:
    """One video's share of the corpus, with offsets local to the video.

    ``words [n]``; ``text_ids [T]`` for all its sentences; ``sentences [S, 4]`` text_lo, text_hi,
    word_lo, word_hi; ``sentence_times [S, 2]`` seconds; ``chunks [C, 2]`` word_lo, word_hi."""

    video_id: str
    words: np.ndarray
    text_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    sentences: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    sentence_times: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float64))
    chunks: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))

    def counts(self) -> dict[str, int]:
        return {"words": len(self.words), "text_ids": len(self.text_ids), "sentences": len(self.sentences), "chunks": len(self.chunks)}

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.savez(f, video_id=np.array(self.video_id), words=self.words, text_ids=self.text_ids,
                     sentences=self.sentences, sentence_times=self.sentence_times, chunks=self.chunks)

    @classmethod
    def load(cls, path: Path) -> "VideoPart":
        with np.load(path) as data:
            return cls(str(data["video_id"]), *(data[k] for k in ("words", "text_ids", "sentences", "sentence_times", "chunks")))


def write_split(directory: Path, parts: list[Path]) -> dict[str, int]:
    """Concatenate video parts (in the given order) into the columns of one split, in ``directory``.

    Two passes over the parts (sizes, then data) so that no column is ever held in memory whole."""
    directory.mkdir(parents=True)
    sizes = {"videos": len(parts), "words": 0, "text_ids": 0, "sentences": 0, "chunks": 0}
    for path in parts:
        for name, n in VideoPart.load(path).counts().items():
            sizes[name] += n
    sizes["sentence_times"] = sizes["sentences"]
    columns = {name: np.lib.format.open_memmap(directory / f"{name}.npy", mode="w+", dtype=dtype, shape=(sizes[name], *shape))
               for name, (dtype, shape) in COLUMNS.items()}
    at = dict.fromkeys(("words", "text_ids", "sentences", "chunks"), 0)
    video_ids = []
    for v, path in enumerate(parts):
        part = VideoPart.load(path)
        video_ids.append(part.video_id)
        n = part.counts()
        columns["words"][at["words"] : at["words"] + n["words"]] = part.words
        columns["text_ids"][at["text_ids"] : at["text_ids"] + n["text_ids"]] = part.text_ids
        rows = slice(at["sentences"], at["sentences"] + n["sentences"])
        columns["sentences"][rows, 0] = v
        columns["sentences"][rows, 1:3] = part.sentences[:, 0:2] + at["text_ids"]
        columns["sentences"][rows, 3:5] = part.sentences[:, 2:4] + at["words"]
        columns["sentence_times"][rows] = part.sentence_times
        rows = slice(at["chunks"], at["chunks"] + n["chunks"])
        columns["chunks"][rows, 0] = v
        columns["chunks"][rows, 1:3] = part.chunks + at["words"]
        columns["videos"][v] = (at["words"], at["words"] + n["words"], at["sentences"], at["sentences"] + n["sentences"])
        for name in at:
            at[name] += n[name]
    for array in columns.values():
        array.flush()
    (directory / "video_ids.json").write_text(json.dumps(video_ids) + "\n", encoding="utf-8")
    return {name: sizes[name] for name in ("videos", "words", "text_ids", "sentences", "chunks")}


def read_corpus_info(corpus_dir: str | os.PathLike) -> dict:
    path = Path(corpus_dir) / "corpus.json"
    if not path.exists():
        raise FileNotFoundError(f"{corpus_dir} is not a finished corpus (no corpus.json); run `videobert corpus build`")
    info = json.loads(path.read_text(encoding="utf-8"))
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise ValueError(f"{path}: not a {FORMAT} version {VERSION} corpus")
    return info


class CorpusSplit:
    """One split of a corpus, memory-mapped: the arrays of the module docstring as attributes."""

    def __init__(self, corpus_dir: str | os.PathLike, split: str = "train"):
        self.info = read_corpus_info(corpus_dir)
        if split not in self.info["splits"]:
            raise ValueError(f"{corpus_dir} has no split {split!r}; it has {sorted(self.info['splits'])}")
        directory = Path(corpus_dir) / split
        for name in COLUMNS:
            setattr(self, name, np.load(directory / f"{name}.npy", mmap_mode="r"))
        self.video_ids: list[str] = json.loads((directory / "video_ids.json").read_text(encoding="utf-8"))
        self.num_visual_words: int = self.info["num_visual_words"]
