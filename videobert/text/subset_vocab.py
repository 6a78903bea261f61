"""A WordPiece vocabulary cut down to the pieces some texts use.

A model that only ever reads a small, known language (the demo's narration) does not need BERT's
30,522 text ids: the masked-language head, the tied embeddings and their optimizer state all scale
with the vocabulary, and on a CPU they cost most of a small model's step. The subset keeps the
base vocabulary's first entries up to ``[MASK]`` (``[PAD]``, the ``[unused]`` ids, ``[UNK]``,
``[CLS]``, ``[SEP]``, ``[MASK]``), so the special ids are the ones ``UnifiedVocab`` expects, then
every piece the texts tokenise to, in the base vocabulary's order.

It tokenises the given texts exactly as the base vocabulary does: WordPiece takes the longest
prefix found in the vocabulary, the base's choice is in the subset, and the subset holds nothing
longer that the base lacks. A word outside the texts may split differently or become ``[UNK]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from videobert.text.tokenizer import WordPieceTokenizer, default_tokenizer_dir
from videobert.utils.io import write_text_atomic
from videobert.vocab import UnifiedVocab


def write_subset_vocab(texts: Iterable[str], path: str | os.PathLike, base: str | os.PathLike | None = None) -> WordPieceTokenizer:
    """Write to ``path`` (a vocab.txt, atomically) the subset of the ``base`` WordPiece vocab.txt
    (default: BERT uncased) that covers ``texts``; return the tokenizer that reads it."""
    base_path = Path(base) if base is not None else default_tokenizer_dir() / "vocab.txt"
    if base_path.is_dir():
        base_path = base_path / "vocab.txt"
    tokens = base_path.read_text(encoding="utf-8").splitlines()
    specials = UnifiedVocab()
    expected = {specials.pad_id: "[PAD]", specials.unk_id: "[UNK]", specials.cls_id: "[CLS]",
                specials.sep_id: "[SEP]", specials.mask_id: "[MASK]"}
    wrong = {i: t for i, t in expected.items() if i >= len(tokens) or tokens[i] != t}
    if wrong:
        raise ValueError(f"{base_path}: special tokens are not at BERT's ids (expected {wrong})")
    tokenizer = WordPieceTokenizer(base_path)
    keep = specials.mask_id + 1
    used = sorted({i for ids in tokenizer.encode_batch(list(texts)) for i in ids if i >= keep})
    write_text_atomic(path, "\n".join(tokens[:keep] + [tokens[i] for i in used]) + "\n")
    return WordPieceTokenizer(path)
