"""``build_corpus``: videos (visual words, clip times, transcript) -> a corpus directory.

Each video is processed on its own (transcript read, split into sentences, WordPiece-encoded,
matched to its clips) and saved as a part; the manifest records it. A bad transcript is recorded
and the video still contributes its video-only segments; a bad video is recorded and skipped.
Re-running resumes: videos the manifest marks done keep their part. When all are processed, the
parts are concatenated into the split directories and ``corpus.json`` is written last.

Videos are assigned to ``train`` or ``heldout`` by a hash of (seed, video id): stable when the
corpus grows, and independent of the order the videos arrive in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from videobert.corpus.segments import check_clip_times, fixed_word_ranges, sentence_word_ranges
from videobert.corpus.store import FORMAT, SPLITS, VERSION, VideoPart, write_split
from videobert.text import Cue, TranscriptError, WordPieceTokenizer, read_transcript, split_sentences, tidy_cues
from videobert.utils.io import atomic_path, write_json_atomic
from videobert.utils.manifest import Manifest

log = logging.getLogger(__name__)

Transcript = str | os.PathLike | Sequence[Cue] | None
VideoInput = tuple[str, np.ndarray, np.ndarray, Transcript]  # (video_id, words [n], times [n, 2], transcript)


@dataclass
class CorpusConfig:
    """How a corpus is built. ``heldout_fraction`` of the videos go to the held-out split."""

    heldout_fraction: float = 0.05
    seed: int = 0
    num_visual_words: int = 12**4
    words_per_video_segment: int = 16
    max_pause: float = 1.0       # seconds of silence that end a sentence
    max_sentence_words: int = 40


def split_of(video_id: str, config: CorpusConfig) -> str:
    digest = hashlib.sha1(f"{config.seed}:{video_id}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "little") / 2**64 < config.heldout_fraction else "train"


def _check_words(video_id: str, words: np.ndarray, times: np.ndarray, num_visual_words: int) -> np.ndarray:
    words = np.asarray(words)
    if words.ndim != 1 or len(words) != len(times):
        raise ValueError(f"video {video_id!r}: {words.shape} visual words for {len(times)} clips")
    if words.size and (words.min() < 0 or words.max() >= num_visual_words):
        raise ValueError(f"video {video_id!r}: visual words must lie in [0, {num_visual_words}), got [{words.min()}, {words.max()}]")
    return words.astype(np.int32)


def video_part(video_id: str, words: np.ndarray, times: np.ndarray, transcript: Transcript,
               tokenizer: WordPieceTokenizer, config: CorpusConfig) -> tuple[VideoPart, str | None]:
    """One video's sentences and segments; returns the part and the transcript error, if any.

    ``words [n]`` visual words, ``times [n, 2]`` clip start/end seconds, ``transcript`` a path, cues
    or ``None`` (no ASR). Raises ``ValueError`` for a bad video (not for a bad transcript)."""
    times = np.asarray(times, dtype=np.float64)
    check_clip_times(times, video_id)
    words = _check_words(video_id, words, times, config.num_visual_words)
    lo, hi = fixed_word_ranges(len(words), config.words_per_video_segment)
    part = VideoPart(video_id, words, chunks=np.stack([lo, hi], axis=1))
    if transcript is None:
        return part, None
    try:
        duration = float(times[:, 1].max()) if len(times) else None
        cues = (read_transcript(transcript, duration) if isinstance(transcript, (str, os.PathLike))
                else tidy_cues(list(transcript), duration))
    except (TranscriptError, OSError) as exc:
        return part, str(exc)
    sentences = split_sentences(cues, max_pause=config.max_pause, max_words=config.max_sentence_words)
    ids = tokenizer.encode_batch([s.text for s in sentences])
    kept = [(s, i) for s, i in zip(sentences, ids) if i]  # text that encodes to nothing teaches nothing
    if not kept:
        return part, None
    spans = np.array([(s.start, s.end) for s, _ in kept], dtype=np.float64)
    counts = np.array([len(i) for _, i in kept], dtype=np.int64)
    text_hi = np.cumsum(counts)
    word_lo, word_hi = sentence_word_ranges(spans, times)
    part.text_ids = np.concatenate([np.asarray(i, dtype=np.int32) for _, i in kept])
    part.sentences = np.stack([text_hi - counts, text_hi, word_lo, word_hi], axis=1)
    part.sentence_times = spans
    return part, None


def _part_path(out_dir: Path, video_id: str) -> Path:
    return out_dir / "parts" / f"{hashlib.sha1(video_id.encode()).hexdigest()[:20]}.npz"


def build_corpus(videos: Iterable[VideoInput], out_dir: str | os.PathLike, config: CorpusConfig | None = None,
                 tokenizer: WordPieceTokenizer | None = None, text_vocab_size: int = 30522) -> dict:
    """Write a corpus directory (layout in ``videobert.corpus.store``) and return its ``corpus.json``.

    ``videos`` yields ``(video_id, words [n] int, times [n, 2] seconds, transcript)`` where the
    transcript is a file path, a list of cues, or ``None`` for a video without ASR."""
    config = config or CorpusConfig()
    out_dir = Path(out_dir)
    tokenizer = tokenizer or WordPieceTokenizer()
    if tokenizer.vocab_size != text_vocab_size:
        raise ValueError(f"tokenizer {tokenizer.path} has {tokenizer.vocab_size} ids; the unified vocabulary expects {text_vocab_size}")
    (out_dir / "corpus.json").unlink(missing_ok=True)  # the directory is unfinished until it is rewritten
    manifest = Manifest(out_dir / "manifest.jsonl")
    seen = set()
    for video_id, words, times, transcript in videos:
        seen.add(video_id)
        path = _part_path(out_dir, video_id)
        if manifest.is_done(video_id) and path.exists():
            continue
        try:
            part, transcript_error = video_part(video_id, words, times, transcript, tokenizer, config)
        except ValueError as exc:
            log.warning("skipping video %s: %s", video_id, exc)
            manifest.record(video_id, "failed", reason=str(exc))
            continue
        if transcript_error:
            log.warning("video %s: transcript not used: %s", video_id, transcript_error)
        with atomic_path(path) as tmp:
            part.save(tmp)
        manifest.record(video_id, "done", split=split_of(video_id, config), **part.counts(),
                        transcript="none" if transcript is None else "error" if transcript_error else "ok",
                        transcript_error=transcript_error)

    info = {"format": FORMAT, "version": VERSION, "num_visual_words": config.num_visual_words,
            "text_vocab_size": text_vocab_size, "tokenizer": str(tokenizer.path),
            "config": dataclasses.asdict(config), "splits": {},
            "videos_failed": sorted(k for k in manifest.keys_with_status("failed") if k in seen),
            "transcript_errors": sorted(k for k, r in manifest.records.items() if k in seen and r.get("transcript") == "error")}
    for split in SPLITS:
        ids = sorted(k for k in manifest.keys_with_status("done") if k in seen and manifest.records[k]["split"] == split)
        tmp = out_dir / f".{split}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        info["splits"][split] = write_split(tmp, [_part_path(out_dir, k) for k in ids])
        shutil.rmtree(out_dir / split, ignore_errors=True)
        os.replace(tmp, out_dir / split)
    write_json_atomic(out_dir / "corpus.json", info)
    log.info("corpus %s: %s", out_dir, info["splits"])
    return info
