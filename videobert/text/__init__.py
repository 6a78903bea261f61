"""Transcripts (WebVTT, SRT, JSON) -> timed cues -> timed sentences -> WordPiece ids."""

from videobert.text.cues import Cue, TranscriptError, Word, tidy_cues
from videobert.text.sentences import Punctuator, Sentence, cue_words, split_sentences
from videobert.text.subset_vocab import write_subset_vocab
from videobert.text.tokenizer import WordPieceTokenizer, default_tokenizer_dir
from videobert.text.transcript import TRANSCRIPT_EXTENSIONS, read_transcript

__all__ = [
    "Cue",
    "Punctuator",
    "Sentence",
    "TRANSCRIPT_EXTENSIONS",
    "TranscriptError",
    "Word",
    "WordPieceTokenizer",
    "cue_words",
    "default_tokenizer_dir",
    "read_transcript",
    "split_sentences",
    "tidy_cues",
    "write_subset_vocab",
]
