"""The pretraining corpus: segments, example streams, the on-disk format, and the masking collator."""

from videobert.corpus.build import CorpusConfig, build_corpus, video_part
from videobert.corpus.collator import MaskingCollator
from videobert.corpus.dataset import PretrainingDataset
from videobert.corpus.segments import fixed_word_ranges, sentence_word_ranges
from videobert.corpus.store import CorpusSplit, read_corpus_info

__all__ = [
    "CorpusConfig",
    "CorpusSplit",
    "MaskingCollator",
    "PretrainingDataset",
    "build_corpus",
    "fixed_word_ranges",
    "read_corpus_info",
    "sentence_word_ranges",
    "video_part",
]
