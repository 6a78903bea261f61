"""One pretraining example from one unit of a corpus split, with the paper's augmentation.

Units: text-only and video-text examples start from a sentence (video-text only from sentences
with at least one visual word); video-only examples start from a 16-word segment of any video.

- Adjacent sentences are randomly concatenated: with probability ``concat_prob`` the sentence is
  joined with the next 1 .. ``max_concat - 1`` sentences of the same video, text and video span both.
- Visual words are sub-sampled with a random stride of 1 to ``max_stride``. A sentence's span is
  fixed by its text, so its words are thinned; a video-only segment instead reads a window of
  16 x stride words from its start and thins that, so it keeps ~16 words covering a longer time
  (the paper's aim: robustness to the speed of the video).
- Alignment negatives: with probability ``negative_rate`` a video-text example's text is replaced
  by the text of an equally long run of sentences from another video (``aligned`` = 0). A split
  with a single video cannot have negatives; its examples stay aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from videobert.corpus.store import CorpusSplit
from videobert.vocab import TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT


@dataclass(frozen=True)
class Augmentation:
    concat_prob: float = 0.5
    max_concat: int = 3
    max_stride: int = 5
    negative_rate: float = 0.5
    words_per_video_segment: int = 16


class ExampleMaker:
    """Builds example dicts from a memory-mapped split; all randomness comes from the given rng."""

    def __init__(self, corpus: CorpusSplit, augmentation: Augmentation, with_word_rows: bool = False):
        self.corpus, self.aug = corpus, augmentation
        self.with_word_rows = with_word_rows  # also give "word_rows": the words' rows of corpus.words (ActBERT reads clips there)
        sentences = corpus.sentences
        self.video_text_units = np.flatnonzero(sentences[:, 4] > sentences[:, 3]) if len(sentences) else np.zeros(0, np.int64)
        self.num_videos_with_text = len(np.unique(sentences[:, 0])) if len(sentences) else 0

    def units(self, stream: int) -> int:
        """How many units the stream draws from."""
        return {TEXT_ONLY: len(self.corpus.sentences), VIDEO_ONLY: len(self.corpus.chunks),
                VIDEO_TEXT: len(self.video_text_units)}[stream]

    def _sentence_run(self, first: int, rng: np.random.Generator, length: int | None = None) -> tuple[int, int]:
        """Sentences ``first .. last`` (inclusive) of one video: ``length`` of them, or a random run."""
        video = int(self.corpus.sentences[first, 0])
        video_end = int(self.corpus.videos[video, 3])
        if length is None:
            length = 1
            if self.aug.max_concat > 1 and rng.random() < self.aug.concat_prob:
                length = int(rng.integers(2, self.aug.max_concat + 1))
        return first, min(first + length, video_end) - 1

    def _text(self, first: int, last: int) -> list[int]:
        lo, hi = self.corpus.sentences[first, 1], self.corpus.sentences[last, 2]
        return self.corpus.text_ids[lo:hi].tolist()

    def _stride(self, rng: np.random.Generator) -> int:
        return int(rng.integers(1, self.aug.max_stride + 1))

    def _negative_text(self, video: int, length: int, rng: np.random.Generator) -> list[int] | None:
        if self.num_videos_with_text < 2:
            return None
        sentences = self.corpus.sentences
        while True:  # terminates: at least one other video has sentences
            other = int(rng.integers(len(sentences)))
            if sentences[other, 0] != video:
                return self._text(*self._sentence_run(other, rng, length))

    def example(self, stream: int, unit: int, rng: np.random.Generator) -> dict:
        """The example dict of docs/ARCHITECTURE.md (``seed`` is added by the dataset)."""
        rows = range(0)
        text: list[int] = []
        aligned = -100
        if stream == VIDEO_ONLY:
            _, lo, _ = self.corpus.chunks[unit]
            video_hi = self.corpus.videos[self.corpus.chunks[unit, 0], 1]
            stride = self._stride(rng)
            rows = range(lo, min(video_hi, lo + self.aug.words_per_video_segment * stride), stride)
        else:
            sentence = unit if stream == TEXT_ONLY else int(self.video_text_units[unit])
            first, last = self._sentence_run(sentence, rng)
            text = self._text(first, last)
            if stream == VIDEO_TEXT:
                lo, hi = self.corpus.sentences[first, 3], self.corpus.sentences[last, 4]
                rows = range(lo, hi, self._stride(rng))
                aligned = 1
                if rng.random() < self.aug.negative_rate:
                    negative = self._negative_text(int(self.corpus.sentences[first, 0]), last - first + 1, rng)
                    if negative is not None:
                        text, aligned = negative, 0
        words = self.corpus.words[rows.start : rows.stop : rows.step].tolist()
        example = {"stream": stream, "text_ids": text, "visual_words": words, "aligned": aligned}
        if self.with_word_rows:
            example["word_rows"] = list(rows)
        return example
