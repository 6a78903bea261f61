"""Caption decoding: greedy and beam search over a :class:`~videobert.tasks.captioning.captioner.Captioner`.

Both never emit ``<pad>``, ``<bos>`` or ``<unk>``, end every caption with ``<eos>`` after at most
``max_words`` words, and return word ids per segment (``<eos>`` and the ``<pad>`` after it included;
``CaptionVocabulary.decode`` cuts them). Each step reruns the decoder over the whole prefix:
captions are a few words long.
"""

from __future__ import annotations

import torch


def _next_log_probs(model, tokens: torch.Tensor, memory: torch.Tensor, input_mask: torch.Tensor, last: bool
                    ) -> torch.Tensor:
    """Log-probabilities ``[B, V]`` of the word after each prefix ``tokens [B, T]``; ``<pad>``, ``<bos>``
    and ``<unk>`` are never chosen, and at the ``last`` step only ``<eos>`` is."""
    vocab = model.vocabulary
    logits = model.logits(tokens, memory, input_mask)[:, -1].float()
    logits[:, [vocab.pad_id, vocab.bos_id, vocab.unk_id]] = float("-inf")
    if last:
        logits[:, torch.arange(logits.shape[1], device=logits.device) != vocab.eos_id] = float("-inf")
    return torch.log_softmax(logits, dim=-1)


def greedy_decode(model, memory: torch.Tensor, input_mask: torch.Tensor, max_words: int) -> list[list[int]]:
    """The most probable next word at every step. ``memory [B, S, H]``, ``input_mask [B, S]``."""
    vocab = model.vocabulary
    tokens = torch.full((memory.shape[0], 1), vocab.bos_id, dtype=torch.long, device=memory.device)
    finished = torch.zeros(memory.shape[0], dtype=torch.bool, device=memory.device)
    for step in range(max_words + 1):  # the words and their <eos>
        word = _next_log_probs(model, tokens, memory, input_mask, step == max_words).argmax(dim=-1)
        word = torch.where(finished, torch.full_like(word, vocab.pad_id), word)
        tokens = torch.cat([tokens, word[:, None]], dim=1)
        finished |= word == vocab.eos_id
        if bool(finished.all()):
            break
    return tokens[:, 1:].tolist()


def beam_search(model, memory: torch.Tensor, input_mask: torch.Tensor, beam_size: int, max_words: int,
                length_penalty: float = 0.0) -> list[list[int]]:
    """Keep the ``beam_size`` most probable prefixes of each segment; return the best finished one,
    ranked by total log-probability / (words + ``<eos>``) ** ``length_penalty``."""
    vocab = model.vocabulary
    batch, k = memory.shape[0], beam_size
    memory = memory.repeat_interleave(k, dim=0)
    input_mask = input_mask.repeat_interleave(k, dim=0)
    tokens = torch.full((batch * k, 1), vocab.bos_id, dtype=torch.long, device=memory.device)
    scores = torch.full((batch, k), float("-inf"), device=memory.device)
    scores[:, 0] = 0.0  # one live prefix at the start, not k copies of it
    finished = torch.zeros(batch * k, dtype=torch.bool, device=memory.device)
    lengths = torch.zeros(batch * k, device=memory.device)
    for step in range(max_words + 1):
        log_probs = _next_log_probs(model, tokens, memory, input_mask, step == max_words)
        log_probs[finished] = float("-inf")
        log_probs[finished, vocab.pad_id] = 0.0  # a finished caption only grows padding, at no cost
        vocab_size = log_probs.shape[1]
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(batch, k * vocab_size)
        scores, best = candidates.topk(k, dim=1)
        rows = (torch.arange(batch, device=memory.device)[:, None] * k + best // vocab_size).reshape(-1)
        words = (best % vocab_size).reshape(-1)
        tokens = torch.cat([tokens[rows], words[:, None]], dim=1)
        lengths = lengths[rows] + (~finished[rows]).float()
        finished = finished[rows] | (words == vocab.eos_id)
        if bool(finished.all()):
            break
    ranked = scores / lengths.reshape(batch, k).clamp_min(1.0) ** length_penalty
    pick = torch.arange(batch, device=memory.device) * k + ranked.argmax(dim=1)
    return tokens[pick, 1:].tolist()
