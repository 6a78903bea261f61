"""Text-to-video: from a sentence, a sequence of visual words, filled in one mask at a time.

The model reads ``[CLS] sentence [>] [MASK] x n [SEP]``. Each step it predicts every still-masked
position, commits the one it is most sure of (highest probability of its best word) and feeds the
result back, so later words are conditioned on earlier choices, as in mask-predict decoding.
With ``temperature > 0`` the committed word is sampled (seeded) instead of taken greedily.
"""

from __future__ import annotations

import torch

from videobert.tasks.inputs import build_sequence, max_length, model_device, pack
from videobert.vocab import UnifiedVocab


@torch.inference_mode()
def text_to_video(model: torch.nn.Module, tokenizer, sentence: str, num_words: int = 8,
                  words_per_step: int = 1, temperature: float = 0.0, seed: int = 0) -> list[int]:
    """Visual words ``[num_words]`` (in ``[0, num_visual_words)``) generated for ``sentence``.

    ``tokenizer`` needs ``encode_batch(texts) -> list[list[int]]``. ``words_per_step`` positions are
    committed per forward pass (``num_words / words_per_step`` passes in all).
    """
    if num_words < 1 or words_per_step < 1:
        raise ValueError("num_words and words_per_step must be >= 1")
    vocab = UnifiedVocab(text_vocab_size=model.config.text_vocab_size, num_visual_words=model.config.num_visual_words)
    model = model.eval()
    text = tokenizer.encode_batch([sentence])[0]
    room = max_length(model) - num_words - 3  # [CLS] [>] [SEP]
    if room < 0:
        raise ValueError(f"{num_words} visual words do not fit in {max_length(model)} positions")
    text = text[:room]
    generator = torch.Generator().manual_seed(seed)
    video = [vocab.mask_id] * num_words
    first_video = 1 + len(text) + 1  # after [CLS] text [>]
    masked = list(range(num_words))
    while masked:
        batch = pack([build_sequence(vocab, text, video)], vocab.pad_id, model_device(model))
        hidden = model.encode(**batch)[0, [first_video + i for i in masked]]
        probs = torch.softmax(model.visual_logits(hidden).float(), dim=-1).cpu()  # [m, num_visual_words]
        if temperature > 0:
            choice = torch.multinomial(torch.softmax(probs.log() / temperature, dim=-1), 1, generator=generator)[:, 0]
        else:
            choice = probs.argmax(dim=-1)
        confidence = probs[torch.arange(len(masked)), choice]
        committed = set(torch.argsort(confidence, descending=True, stable=True)[:words_per_step].tolist())
        for j in committed:
            video[masked[j]] = int(vocab.visual_ids([int(choice[j])])[0])
        masked = [p for i, p in enumerate(masked) if i not in committed]
    return vocab.visual_words(video).tolist()
