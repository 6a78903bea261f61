"""Next-visual-word forecasting: given the visual words so far, which come next?

The model reads the context as a video-only example with one masked position after it,

    [CLS] [>] v_1 ... v_n [MASK] [SEP]

and ranks the visual-word vocabulary at the mask (the paper's qualitative future forecasting
shows the top 3). Accuracy@k on held-out sequences slides over each sequence: every position t
(from ``min_context`` on, every ``stride``-th) is predicted from the ``context`` words before it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from videobert.tasks.inputs import build_sequence, max_length, model_device, pack
from videobert.vocab import UnifiedVocab


def _vocab(model: torch.nn.Module) -> UnifiedVocab:
    return UnifiedVocab(text_vocab_size=model.config.text_vocab_size, num_visual_words=model.config.num_visual_words)


@torch.inference_mode()
def next_word_log_probs(model: torch.nn.Module, contexts: Sequence[Sequence[int]]) -> torch.Tensor:
    """Log-probabilities ``[B, num_visual_words]`` of the word following each context (visual words).

    Contexts longer than the model allows keep their most recent words.
    """
    vocab = _vocab(model)
    room = max_length(model) - 4  # [CLS] [>] [MASK] [SEP]
    sequences, mask_at = [], []
    for context in contexts:
        recent = list(context)[-room:] if room > 0 else []
        ids = vocab.visual_ids(np.asarray(recent, dtype=np.int64)).tolist() + [vocab.mask_id]
        sequences.append(build_sequence(vocab, None, ids))
        mask_at.append(len(ids) + 1)  # after [CLS] [>]
    batch = pack(sequences, vocab.pad_id, model_device(model))
    hidden = model.encode(**batch)
    at = hidden[torch.arange(len(contexts), device=hidden.device), torch.tensor(mask_at, device=hidden.device)]
    return torch.log_softmax(model.visual_logits(at).float(), dim=-1).cpu()


def forecast_next(model: torch.nn.Module, context: Sequence[int], k: int = 3) -> list[tuple[int, float]]:
    """The ``k`` most likely next visual words after ``context``, as (word, probability), best first."""
    log_probs = next_word_log_probs(model, [context])[0]
    values, words = torch.topk(log_probs, k)
    return [(int(w), float(v.exp())) for w, v in zip(words, values)]


def forecast_targets(sequences: Iterable[Sequence[int]], context: int = 16, min_context: int = 1, stride: int = 1
                     ) -> list[tuple[list[int], int]]:
    """(context words, true next word) pairs sliding over each held-out sequence."""
    if context < 1 or min_context < 1 or stride < 1:
        raise ValueError("context, min_context and stride must be >= 1")
    pairs = []
    for seq in sequences:
        seq = [int(w) for w in seq]
        for t in range(min_context, len(seq), stride):
            pairs.append((seq[max(0, t - context) : t], seq[t]))
    return pairs


def forecast_accuracy(model: torch.nn.Module, sequences: Iterable[Sequence[int]], ks: tuple[int, ...] = (1, 3, 5),
                      context: int = 16, min_context: int = 1, stride: int = 1, batch_size: int = 64
                      ) -> dict[str, float]:
    """Accuracy@k of next-word forecasting over held-out sequences of visual words.

    Returns ``{"accuracy@1": ..., "accuracy@3": ..., "num_targets": N}``; ranks break ties by word id.
    """
    pairs = forecast_targets(sequences, context, min_context, stride)
    if not pairs:
        raise ValueError(f"no sequence is longer than min_context={min_context}: nothing to forecast")
    hits = np.zeros(len(ks), dtype=np.int64)
    for b in range(0, len(pairs), batch_size):
        chunk = pairs[b : b + batch_size]
        log_probs = next_word_log_probs(model, [c for c, _ in chunk])
        target = torch.tensor([t for _, t in chunk])
        true = log_probs[torch.arange(len(chunk)), target][:, None]
        index = torch.arange(log_probs.shape[1])[None, :]
        ranks = ((log_probs > true) | ((log_probs == true) & (index < target[:, None]))).sum(dim=1)
        hits += np.array([(ranks < k).sum().item() for k in ks])
    result: dict[str, float] = {f"accuracy@{k}": float(h / len(pairs)) for k, h in zip(ks, hits)}
    result["num_targets"] = len(pairs)
    return result
