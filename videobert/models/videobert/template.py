"""VideoBERT's segment features for captioning: the paper's fill-in template read with the video.

What the paper did (Sun et al. 2019, section 4.5, "Transfer learning for captioning"): to use
VideoBERT as a feature extractor given only video, it appends the segment's video tokens to the
fill-in-the-blank template

    now let's [MASK] the [MASK] to the [MASK], and then [MASK] the [MASK].

extracts "the features for the video tokens and the masked out text tokens", takes their average
and concatenates the two; those features replace the inputs of Zhou et al. 2018's transformer
encoder-decoder captioner. "VideoBERT + S3D" also concatenates average-pooled S3D features; the
"S3D" baseline uses the S3D features alone.

What is followed here: the model reads ``[CLS] template [>] video [SEP]`` (``tasks.inputs``;
template words outside the model's vocabulary become ``[UNK]``, e.g. "'", "and", "then" and ","
for the demo's cut-down vocabulary) and the output at each video token is concatenated with the
mean of the five ``[MASK]`` outputs. The captioner's input stays a *sequence*, one vector per
clip, as Zhou et al.'s encoder reads a sequence of per-frame features; its self-attention and
the decoder's cross-attention do the pooling that the paper's averaging does by hand.

    variant          per clip                                   width
    s3d              S3D feature                                1024
    videobert        [video output ; mean of mask outputs]      2H
    videobert+s3d    [video output ; mean of mask outputs ; S3D]  2H + 1024
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from videobert.tasks.inputs import build_sequence, max_length, model_device, pack

TEMPLATE = "now let's [MASK] the [MASK] to the [MASK], and then [MASK] the [MASK]."


class TemplateEncoder:
    """The template read with a segment's visual words by a ``VideoBertForPretraining``.

    ``tokenizer.encode_batch(texts)`` gives WordPiece ids without specials.
    """

    def __init__(self, model: torch.nn.Module, tokenizer, batch_size: int = 64):
        self.model = model.eval()
        self.vocab = model.config.vocab
        self.batch_size = batch_size
        pieces = tokenizer.encode_batch(TEMPLATE.split("[MASK]"))
        self.text_ids: list[int] = []
        self.mask_positions: list[int] = []  # positions in the full input ([CLS] is 0)
        for i, piece in enumerate(pieces):
            self.text_ids += piece
            if i < len(pieces) - 1:
                self.mask_positions.append(1 + len(self.text_ids))
                self.text_ids.append(self.vocab.mask_id)
        self.video_start = 1 + len(self.text_ids) + 1  # after [CLS] text [>]

    @property
    def max_clips(self) -> int:
        """Most visual words that fit beside the template in the model's positions."""
        return max_length(self.model) - len(self.text_ids) - 3

    @property
    def output_dim(self) -> int:
        return 2 * int(self.model.config.hidden_size)

    def sequence(self, words: np.ndarray) -> tuple[list[int], list[int]]:
        """(input ids, token types) of ``[CLS] template [>] words [SEP]``."""
        if not 0 < len(words) <= self.max_clips:
            raise ValueError(f"a segment needs 1 to {self.max_clips} visual words beside the template, got {len(words)}")
        return build_sequence(self.vocab, self.text_ids, self.vocab.visual_ids(np.asarray(words)).tolist())

    @torch.inference_mode()
    def encode(self, segments_words: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per segment of ``n`` visual words: ``[n, 2H]`` float32, each video token's output followed by
        the mean of the template's mask outputs."""
        out = []
        for b in range(0, len(segments_words), self.batch_size):
            chunk = segments_words[b : b + self.batch_size]
            batch = pack([self.sequence(w) for w in chunk], self.vocab.pad_id, model_device(self.model))
            hidden = self.model.encode(**batch).float()
            masks = hidden[:, self.mask_positions].mean(dim=1)  # [B, H]
            for row, words in enumerate(chunk):
                video = hidden[row, self.video_start : self.video_start + len(words)]
                out.append(torch.cat([video, masks[row].expand_as(video)], dim=1).cpu().numpy())
        return out
