"""Model FLOPs of a VideoBERT training step, the numerator of model FLOP utilisation (MFU).

Forward and backward together are 3x the forward's multiply-adds x 2: 6 x (encoder matmul
parameters) per token, 12 x layers x hidden x length per token for the attention scores and the
weighted values, and 6 x (H^2 + V x H) per masked token for each head (transform and decoder, which
the fused heads compute on masked rows only). Embedding lookups, norms, activations and the
optimizer are not counted: MFU measures the matmuls a step needs, not the ones it happens to run.
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
    for labels, vocab in ((batch["mlm_labels"], config.text_vocab_size), (batch["mvm_labels"], config.num_visual_words)):
        flops += 6.0 * float((labels != -100).sum()) * (hidden * hidden + vocab * hidden)
    return flops
