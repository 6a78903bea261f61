"""``build_corpus``: videos (visual words, clip times, transcript) -> a corpus directory.

Each video is processed on its own (transcript read, split into sentences, WordPiece-encoded,
matched to its clips) and saved as a part; the manifest records it. A bad transcript is recorded
and the video still contributes its video-only segments; a bad video is recorded and skipped.
Re-running resumes: videos the manifest marks done keep their part. When all are processed, the
parts are concatenated into the split directories and ``corpus.json`` is written last. The
directory's fingerprint (``videobert.utils.fingerprint``: the build config, the tokenizer's and the
tree's digests, the caller's sources) makes a rerun with other settings fail instead of mixing old
parts and splits with new ones; ``overwrite=True`` starts over. A killed build loses at most the
video in flight: parts and split directories appear whole or not at all.

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
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from videobert.corpus.segments import check_clip_times, fixed_word_ranges, sentence_word_ranges
from videobert.corpus.store import FORMAT, SPLITS, VERSION, VideoPart, write_split
from videobert.text import Cue, TranscriptError, WordPieceTokenizer, read_transcript, split_sentences, tidy_cues
from videobert.utils.fingerprint import FINGERPRINT_FILE, claim_output, file_digest, sha256_file
from videobert.utils.io import atomic_path, write_json_atomic
from videobert.utils.manifest import Manifest

log = logging.getLogger(__name__)

Transcript = str | os.PathLike | Sequence[Cue] | None
# (video_id, words [n], times [n, 2], transcript), or (video_id, load, None, transcript) where
# load() -> (words, times) reads the video only when its part is not built yet (errors in it are the video's)
WordsLoader = Callable[[], tuple[np.ndarray, np.ndarray]]
VideoInput = tuple[str, np.ndarray | WordsLoader, np.ndarray | None, Transcript]


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


def corpus_fingerprint(config: CorpusConfig, tokenizer: WordPieceTokenizer, text_vocab_size: int,
                       visual_words: str | os.PathLike | None, sources: dict[str, Any] | None) -> dict[str, Any]:
    """What decides a corpus's contents: its build settings and the digests of what it reads."""
    return {"stage": "corpus", "config": dataclasses.asdict(config), "text_vocab_size": text_vocab_size,
            "tokenizer": sha256_file(tokenizer.path), "visual_words": file_digest(visual_words) if visual_words else None,
            "sources": sources or {}}


def build_corpus(videos: Iterable[VideoInput], out_dir: str | os.PathLike, config: CorpusConfig | None = None,
                 tokenizer: WordPieceTokenizer | None = None, text_vocab_size: int | None = None,
                 visual_words: str | os.PathLike | None = None, sources: dict[str, Any] | None = None,
                 overwrite: bool = False) -> dict:
    """Write a corpus directory (layout in ``videobert.corpus.store``) and return its ``corpus.json``.

    ``videos`` yields ``(video_id, words [n] int, times [n, 2] seconds, transcript)`` (or a loader
    in place of words and times, see ``VideoInput``) where the transcript is a file path, a list of
    cues, or ``None`` for a video without ASR. ``text_vocab_size`` defaults to the tokenizer's.
    ``visual_words``: the tree file the words come from; its path and digest (``file_digest``) go into
    ``corpus.json`` so that pretraining can start the visual-word embeddings from its centroids.
    ``sources``: digests of the caller's inputs (features, transcripts) for the fingerprint.
    A directory built with another fingerprint raises ``StaleOutputError`` unless ``overwrite``."""
    config = config or CorpusConfig()
    out_dir = Path(out_dir)
    tokenizer = tokenizer or WordPieceTokenizer()
    text_vocab_size = tokenizer.vocab_size if text_vocab_size is None else text_vocab_size
    if tokenizer.vocab_size != text_vocab_size:
        raise ValueError(f"tokenizer {tokenizer.path} has {tokenizer.vocab_size} ids; the unified vocabulary expects {text_vocab_size}")
    claim_output(out_dir / FINGERPRINT_FILE, "corpus build",
                 corpus_fingerprint(config, tokenizer, text_vocab_size, visual_words, sources), overwrite=overwrite)
    (out_dir / "corpus.json").unlink(missing_ok=True)  # the directory is unfinished until it is rewritten
    manifest = Manifest(out_dir / "manifest.jsonl")
    seen = set()
    for video_id, words, times, transcript in videos:
        seen.add(video_id)
        path = _part_path(out_dir, video_id)
        if manifest.is_done(video_id) and path.exists():
            continue
        try:
            if callable(words):
                words, times = words()
            part, transcript_error = video_part(video_id, words, times, transcript, tokenizer, config)
        except (ValueError, OSError) as exc:
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
            "visual_words": ({"path": str(Path(visual_words).resolve()), "digest": file_digest(visual_words)}
                             if visual_words else None),
            "config": dataclasses.asdict(config), "splits": {},
            "videos_failed": sorted(k for k in manifest.keys_with_status("failed") if k in seen),
            "transcript_errors": sorted(k for k, r in manifest.records.items() if k in seen and r.get("transcript") == "error")}
    for stale in out_dir.glob(".*.tmp*"):  # split directories of a killed build
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    for split in SPLITS:
        ids = sorted(k for k in manifest.keys_with_status("done") if k in seen and manifest.records[k]["split"] == split)
        tmp = out_dir / f".{split}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        info["splits"][split] = write_split(tmp, [_part_path(out_dir, k) for k in ids])
        shutil.rmtree(out_dir / split, ignore_errors=True)
        os.replace(tmp, out_dir / split)
    write_json_atomic(out_dir / "corpus.json", info)
    log.info("corpus %s: %s", out_dir, info["splits"])
    if not info["splits"]["heldout"]["videos"] and config.heldout_fraction > 0:
        log.warning("corpus %s: no video fell into the held-out split (heldout_fraction %s of %d videos); "
                    "pretraining will run without held-out evaluation", out_dir, config.heldout_fraction,
                    info["splits"]["train"]["videos"])
    return info
