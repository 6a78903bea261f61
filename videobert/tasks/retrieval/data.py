"""What is retrieved: annotated segments (the videos) and their sentences (the texts).

A segment is a candidate video when its video has visual words and at least one clip centre lies
inside it (``videobert.tasks.sources.segment_words``); otherwise it is skipped and counted under
``missing_video`` or ``no_clips``. A segment whose sentence has no WordPiece is skipped as
``empty_sentence``.

**Duplicate sentences.** Two segments with the same sentence cannot be told apart by any text
query, so the texts are the *distinct* sentences (same WordPiece ids = same sentence: the model
cannot tell uncased or re-spaced copies apart), and a text's right answers are all the segments
that carry it. Text-to-video: a query with m right answers is ranked by the best of them (chance
R@1 is m / n, reported). Video-to-text: each segment has exactly one right text. How many segments
share their sentence with another is reported as ``duplicate_segments``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from videobert.tasks.annotations import Segment
from videobert.tasks.sources import VideoWords, segments_with_words


@dataclass
class RetrievalSet:
    """``segments[v]`` with ``words[v]`` (visual words, int64 ``[n_v]``) are the videos;
    ``sentences[t]`` with ``text_ids[t]`` (WordPiece ids) the distinct texts; segment v says
    ``sentences[text_of[v]]``."""

    segments: list[Segment]
    words: list[np.ndarray]
    sentences: list[str]
    text_ids: list[list[int]]
    text_of: np.ndarray  # [V] int64
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def relevance(self) -> np.ndarray:
        """``[T, V]`` bool: text t is the sentence of segment v."""
        return self.text_of[None, :] == np.arange(len(self.sentences))[:, None]

    @property
    def duplicate_segments(self) -> int:
        """Segments whose sentence at least one other segment also carries."""
        counts = np.bincount(self.text_of, minlength=len(self.sentences))
        return int((counts[self.text_of] > 1).sum())


def build_retrieval_set(segments: Sequence[Segment], video_words: VideoWords, tokenizer) -> RetrievalSet:
    """The usable segments and their distinct sentences (see the module docstring). Raises
    ``ValueError`` when fewer than two segments remain (retrieval among one is no test), naming
    what was skipped. ``tokenizer.encode_batch(texts)`` gives WordPiece ids."""
    skipped = {"missing_video": 0, "no_clips": 0, "empty_sentence": 0}
    with_words = list(segments_with_words(segments, video_words, skipped))
    ids_of_sentence = tokenizer.encode_batch([seg.sentence for seg, _ in with_words]) if with_words else []
    kept: list[Segment] = []
    words: list[np.ndarray] = []
    index_of: dict[tuple[int, ...], int] = {}
    sentences: list[str] = []
    text_ids: list[list[int]] = []
    text_of: list[int] = []
    for (seg, seg_words), ids in zip(with_words, ids_of_sentence):
        if not ids:
            skipped["empty_sentence"] += 1
            continue
        key = tuple(ids)
        if key not in index_of:
            index_of[key] = len(sentences)
            sentences.append(seg.sentence)
            text_ids.append(list(ids))
        kept.append(seg)
        words.append(seg_words)
        text_of.append(index_of[key])
    if len(kept) < 2:
        raise ValueError(f"retrieval: need at least 2 segments with clips and a sentence, got {len(kept)} of "
                         f"{len(segments)} (skipped: {skipped})")
    return RetrievalSet(kept, words, sentences, text_ids, np.array(text_of, dtype=np.int64), skipped)
