"""Model FLOPs of a VideoBERT training step, the numerator of model FLOP utilisation (MFU).

Forward and backward together are 3x the forward's multiply-adds x 2: 6 x (encoder matmul
parameters) per token, 12 x layers x hidden x length per token for the attention scores and the
weighted values, and 6 x (H^2 + V x H) per masked token for each head (transform and decoder, which
the fused heads compute on masked rows only; 4 x V x H for a decoder tied to frozen visual-word
embeddings, which gets no weight gradient). Visual words embedded from their centroids add the
projection of the rows it computes (every position's lookup and, when tied, the decoder's whole
table): 2 x D x H per row forward and as much again for the projection's weight gradient unless
frozen (the centroids are a buffer: no input gradient). Embedding lookups, norms, activations and
the optimizer are not counted: MFU measures the matmuls a step needs.
"""

from __future__ import annotations

import torch

from videobert.models.videobert.config import VideoBertConfig


def training_step_flops(config: VideoBertConfig, batch: dict[str, torch.Tensor]) -> float:
    """FLOPs of one forward + backward of ``VideoBertForPretraining`` on a collated ``batch``."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    per_layer = 4 * hidden * hidden + 2 * hidden * config.intermediate_size  # Q, K, V, output; feed-forward
    tokens = float(batch["attention_mask"].sum())
    length = batch["input_ids"].shape[1]
    flops = 6.0 * layers * per_layer * tokens + 12.0 * layers * hidden * length * tokens
    frozen_visual_decoder = config.tie_word_embeddings and config.freeze_visual_embeddings
    for labels, vocab, frozen in ((batch["mlm_labels"], config.text_vocab_size, False),
                                  (batch["mvm_labels"], config.num_visual_words, frozen_visual_decoder)):
        flops += float((labels != -100).sum()) * (6.0 * hidden * hidden + (4.0 if frozen else 6.0) * vocab * hidden)
    if config.visual_embeddings_from_centroids:
        rows = batch["input_ids"].numel() + (config.num_visual_words if config.tie_word_embeddings else 0)
        passes = 1 if config.freeze_visual_embeddings else 2
        flops += 2.0 * passes * rows * config.visual_feature_dim * hidden
    return flops
