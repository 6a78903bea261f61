"""The captioner's output vocabulary: whole words, built from the training captions.

Word-level, not WordPiece: YouCook II captioners (Zhou et al. 2018 and those after it) predict
words from a vocabulary of the training captions, and the COCO metrics score words, so a word
vocabulary keeps every decoding step a scored unit. Words seen fewer than ``min_count`` times
become ``<unk>``.

A caption's words: lower-cased runs of letters and digits, joined by ``'``, ``-``, ``/`` or
``.`` inside a word ("let's", "stir-fry", "1/2", "1.5"); other punctuation is dropped (the COCO
evaluation's PTB tokenizer removes it before scoring anyway).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from videobert.utils.io import write_text_atomic

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
_WORD = re.compile(r"[a-z0-9]+(?:['\-/.][a-z0-9]+)*")


def caption_words(caption: str) -> list[str]:
    """The words of a caption, lower-cased, punctuation dropped: ``"Cut the onion."`` -> ``["cut", "the", "onion"]``."""
    return _WORD.findall(caption.lower())


class CaptionVocabulary:
    """Word <-> id. Ids 0..3 are ``<pad> <bos> <eos> <unk>``; words follow by falling count, ties alphabetical."""

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a caption vocabulary starts with {SPECIALS}, got {words[:len(SPECIALS)]}")
        if len(set(words)) != len(words):
            raise ValueError("a caption vocabulary lists each word once")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(len(SPECIALS))

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> "CaptionVocabulary":
        counts = Counter(w for caption in captions for w in caption_words(caption))
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        if not kept:
            raise ValueError(f"no caption word occurs at least {min_count} time(s)")
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, caption: str, max_words: int | None = None) -> list[int]:
        """Word ids of ``caption`` (at most ``max_words``), without ``<bos>`` / ``<eos>``."""
        ids = [self.index.get(w, self.unk_id) for w in caption_words(caption)]
        return ids if max_words is None else ids[:max_words]

    def decode(self, ids: Iterable[int]) -> str:
        """Words up to the first ``<eos>``, specials left out, joined by spaces."""
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            if i >= len(SPECIALS):
                out.append(self.words[i])
        return " ".join(out)

    def save(self, path: str | os.PathLike) -> None:
        write_text_atomic(path, "\n".join(self.words) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CaptionVocabulary":
        return cls(Path(path).read_text(encoding="utf-8").splitlines())
