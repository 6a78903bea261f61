"""Training the captioner on annotated segments (teacher forcing, cross-entropy on the words).

The paper's settings are the defaults: batch 128, Adam as in BERT pretraining (decoupled weight
decay 0.01 except biases and LayerNorms, gradients clipped to norm 1), learning rate 1e-3 with a
linear decay to zero, 40,000 steps. Examples are shuffled anew each epoch with the seed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from videobert.tasks.captioning.captioner import Captioner, CaptionerConfig, pad_inputs
from videobert.tasks.captioning.vocabulary import CaptionVocabulary
from videobert.utils.seed import seed_everything

log = logging.getLogger(__name__)


@dataclass
class CaptionerTrainConfig:
    steps: int = 40_000
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 0
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    min_word_count: int = 1       # rarer training words become <unk>
    seed: int = 0
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256   # 2 x hidden, the ratio of Zhou et al. (1024 -> 2048)
    dropout: float = 0.4
    max_caption_words: int = 30


@dataclass
class TrainResult:
    captioner: Captioner
    losses: list[float]       # per step, mean cross-entropy per word (nats)
    seconds: float
    caption_tokens: int       # decoder targets trained on (words + <eos>), all steps
    clip_tokens: int          # encoder inputs, all steps

    @property
    def caption_tokens_per_second(self) -> float:
        return self.caption_tokens / self.seconds if self.seconds > 0 else float("nan")


def _caption_batch(ids: Sequence[list[int]], vocab: CaptionVocabulary) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder inputs ``<bos> w1 .. wn`` and targets ``w1 .. wn <eos>``, padded: two ``[B, T]`` int64."""
    length = max(len(c) for c in ids) + 1
    inputs = torch.full((len(ids), length), vocab.pad_id, dtype=torch.long)
    targets = torch.full((len(ids), length), vocab.pad_id, dtype=torch.long)
    for i, c in enumerate(ids):
        inputs[i, : len(c) + 1] = torch.tensor([vocab.bos_id, *c])
        targets[i, : len(c) + 1] = torch.tensor([*c, vocab.eos_id])
    return inputs, targets


def _optimizer(model: Captioner, config: CaptionerTrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim < 2 or "norm" in name else decay).append(parameter)
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.999), eps=1e-6)


def train_captioner(inputs: Sequence[np.ndarray], captions: Sequence[str], config: CaptionerTrainConfig = CaptionerTrainConfig(),
                    device: str | torch.device = "cpu") -> TrainResult:
    """Train a captioner on segments' features (``[n_i, D]`` each) and their captions.

    The word vocabulary is built from ``captions``. The same seed gives the same model.
    """
    if len(inputs) != len(captions) or not inputs:
        raise ValueError(f"need as many captions as segments (and at least one), got {len(inputs)} and {len(captions)}")
    seed_everything(config.seed)
    vocab = CaptionVocabulary.build(captions, config.min_word_count)
    ids = [vocab.encode(c, config.max_caption_words) for c in captions]
    model_config = CaptionerConfig(
        input_dim=int(inputs[0].shape[1]), vocab_size=len(vocab), hidden_size=config.hidden_size,
        num_layers=config.num_layers, num_heads=config.num_heads, intermediate_size=config.intermediate_size,
        dropout=config.dropout, max_caption_words=config.max_caption_words)
    model = Captioner(model_config, vocab)
    model.set_feature_statistics(np.concatenate(inputs))
    model.to(device).train()
    optimizer = _optimizer(model, config)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(
        (step + 1) / max(1, config.warmup_steps), max(0.0, (config.steps - step) / max(1, config.steps - config.warmup_steps))))
    rng = np.random.default_rng(config.seed)
    order, cursor = rng.permutation(len(inputs)), 0
    losses, caption_tokens, clip_tokens = [], 0, 0
    started = time.perf_counter()
    for _ in range(config.steps):
        if cursor >= len(order):
            order, cursor = rng.permutation(len(inputs)), 0
        chosen = order[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        features, mask = pad_inputs([inputs[i] for i in chosen], device)
        decoder_in, targets = (t.to(device) for t in _caption_batch([ids[i] for i in chosen], vocab))
        logits = model(features, mask, decoder_in)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                 ignore_index=vocab.pad_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        schedule.step()
        losses.append(loss.detach().item())
        caption_tokens += int((targets != vocab.pad_id).sum())
        clip_tokens += int(mask.sum())
    seconds = time.perf_counter() - started
    log.info("captioner: %d steps in %.1f s (%.0f caption tokens/s), final loss %.3f", config.steps, seconds,
             caption_tokens / max(seconds, 1e-9), losses[-1] if losses else float("nan"))
    return TrainResult(model.eval(), losses, seconds, caption_tokens, clip_tokens)
