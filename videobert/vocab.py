"""The unified token id space shared by the corpus, the model and the tasks. Defined once, here.

    [0, text_vocab_size)                      BERT uncased WordPiece ids, including its specials
                                              [PAD]=0 [UNK]=100 [CLS]=101 [SEP]=102 [MASK]=103
    text_vocab_size                           [>]: separates text from video
    [visual_offset, visual_offset + n_words)  visual words 0 .. n_words-1 (n_words = 12**4 = 20,736)

One [MASK] serves both modalities; the token type (0 text, 1 video) tells the model which is
which. Sequences are laid out as (token types in brackets):

    video-text   [CLS](0) text(0) [>](1) video(1) [SEP](1)
    text-only    [CLS](0) text(0) [SEP](0)
    video-only   [CLS](0) [>](1) video(1) [SEP](1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT = 0, 1, 2
STREAM_NAMES = ("text", "video", "video_text")


@dataclass(frozen=True)
class UnifiedVocab:
    text_vocab_size: int = 30522
    num_visual_words: int = 12**4
    pad_id: int = 0
    unk_id: int = 100
    cls_id: int = 101
    sep_id: int = 102
    mask_id: int = 103

    @property
    def video_sep_id(self) -> int:
        """Id of ``[>]``, the text/video separator."""
        return self.text_vocab_size

    @property
    def visual_offset(self) -> int:
        return self.text_vocab_size + 1

    @property
    def size(self) -> int:
        return self.visual_offset + self.num_visual_words

    @property
    def special_ids(self) -> tuple[int, ...]:
        return (self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id, self.video_sep_id)

    def visual_ids(self, words: np.ndarray) -> np.ndarray:
        """Visual words ``[n]`` in ``[0, num_visual_words)`` -> unified ids."""
        words = np.asarray(words, dtype=np.int64)
        if words.size and (words.min() < 0 or words.max() >= self.num_visual_words):
            raise ValueError(f"visual words must lie in [0, {self.num_visual_words}), got [{words.min()}, {words.max()}]")
        return words + self.visual_offset

    def visual_words(self, ids: np.ndarray) -> np.ndarray:
        """Unified ids of visual tokens -> visual words."""
        return np.asarray(ids, dtype=np.int64) - self.visual_offset

    def is_visual(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        return ids >= self.visual_offset
