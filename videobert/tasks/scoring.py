"""What the downstream tasks ask of a trained model, whatever its family.

Zero-shot classification, retrieval, alignment and captioning call these hooks and nothing else
of the model, so one implementation of each task serves every family
(``videobert.models.<family>.scoring`` implements them; ``Family.scoring`` builds them).

Terms:
- a *text* is a list of WordPiece ids, no special tokens;
- a *video* is one segment's clips, in time order, as an int64 array ``[n]``: for VideoBERT the
  clips' visual words, for the other families rows of a clip store the scoring object holds
  (features, regions, frames). The tasks select and thin these arrays (``segment_words``,
  ``subsample_evenly``) without knowing what the ints mean; the hooks read them.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np
import torch


class TaskScoring(Protocol):
    family: str              # the model family's name ("videobert", "actbert", "videoprism")
    mask_id: int             # the text id of [MASK] (fill-in prompts put it in texts)
    can_fill_masks: bool     # False: no masked-word head; zero-shot uses prompt embeddings instead

    def max_clips(self, text_length: int) -> int:
        """Most clips a video may hold beside a text of ``text_length`` ids (longer ones are thinned)."""

    def fill_masks(self, text: list[int], slots: Sequence[tuple[int, int]], videos: Sequence[np.ndarray | None]
                   ) -> list[torch.Tensor]:
        """Log-probabilities over the text vocabulary at each slot of ``text`` read with each video
        (``None``: text alone, the language prior): per slot ``(start, count)`` (offsets into ``text``,
        whose ids there are ``mask_id``) a ``[B, count, text_vocab]`` float32 CPU tensor."""

    def pair_logits(self, texts: Sequence[list[int]], videos: Sequence[np.ndarray],
                    text_index: np.ndarray, video_index: np.ndarray) -> np.ndarray:
        """Matching logits ``[P]`` float64 of pairs ``(texts[text_index[p]], videos[video_index[p]])``
        (higher: more likely aligned; > 0 read as "aligned")."""

    def embed_texts(self, texts: Sequence[list[int]]) -> torch.Tensor:
        """``[T, D]`` unit vectors of texts alone (same space as ``embed_videos``)."""

    def embed_videos(self, videos: Sequence[np.ndarray]) -> torch.Tensor:
        """``[V, D]`` unit vectors of videos alone."""

    @property
    def clip_feature_dim(self) -> int:
        """Width of :meth:`clip_features` rows."""

    @property
    def max_feature_clips(self) -> int:
        """Most clips :meth:`clip_features` reads per video (the task thins longer segments evenly)."""

    def clip_features(self, videos: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per video of ``n`` clips, ``[n, clip_feature_dim]`` float32: the model's features of each
        clip in context, the captioner's input (VideoBERT: the paper's fill-in template recipe)."""


def task_scoring(model_or_scoring: Any, tokenizer: Any = None, **options: Any) -> TaskScoring:
    """The hooks of a model, through its family's ``scoring(model, tokenizer, **options)``
    (``options``: e.g. ``batch_size``, ``progress``, and what the family needs to read a video), or
    ``model_or_scoring`` itself when it already is a set of hooks: then ``tokenizer`` and ``options``
    are not used (the hooks keep the batch size and tokenizer they were made with)."""
    if isinstance(model_or_scoring, torch.nn.Module):
        from videobert.models import get_family

        return get_family(model_or_scoring.config.model_type).scoring(model_or_scoring, tokenizer, **options)
    return model_or_scoring
