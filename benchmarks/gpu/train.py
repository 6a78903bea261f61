"""GPU piece `train`: pretraining steps of the base VideoBERT (BERT-base size, 30,522 text ids + 20,736
visual words) on one GPU in bf16 as DeepSpeed's bf16 mode runs them (bf16 weights, activations and
gradients; fp32 master weights updated by fused AdamW, copied back to bf16): tokens/s and model
FLOP utilisation (MFU) against the GPU's measured bf16 matmul peak.

Batch: 32 collated examples (``MaskingCollator``, all three streams, up to 512 tokens); forward,
backward and optimizer step timed together (CUDA events), median over the timed steps after two
warm-up steps. The loss heads run the op's default backend on CUDA (Triton). This is the model's
step, not the DeepSpeed trainer's (DeepSpeed is usually absent where this runs; its overhead on one
GPU with ZeRO-1/2 is the optimizer's sharding bookkeeping).

FLOPs per step: ``videobert.models.videobert.flops.training_step_flops`` (the model's matmuls,
forward + backward).
"""

from __future__ import annotations

import numpy as np
import torch

from gpu_common import device, matmul_peak_flops, peak_memory_bytes, piece_main, time_call
from videobert.corpus.collator import MaskingCollator
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.models.videobert.flops import training_step_flops
from videobert.vocab import TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT, UnifiedVocab


def examples(count: int, max_tokens: int, vocab: UnifiedVocab, seed: int = 0) -> list[dict]:
    """Examples of every stream (a third each) that fill about ``max_tokens`` positions."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        stream = (VIDEO_TEXT, TEXT_ONLY, VIDEO_ONLY)[i % 3]
        text = rng.integers(vocab.mask_id + 1, vocab.text_vocab_size, max_tokens // 4).tolist() if stream != VIDEO_ONLY else []
        video = rng.integers(0, vocab.num_visual_words, max_tokens - len(text) - 3).tolist() if stream != TEXT_ONLY else []
        out.append({"stream": stream, "text_ids": text, "visual_words": video,
                    "aligned": 1 if stream == VIDEO_TEXT else -100, "seed": seed * 100_000 + i})
    return out


def measure(args) -> dict:
    dev = device()
    vocab = UnifiedVocab(text_vocab_size=1000, num_visual_words=500) if args.smoke else UnifiedVocab()
    sizes = dict(text_vocab_size=vocab.text_vocab_size, num_visual_words=vocab.num_visual_words)
    config = VideoBertConfig.tiny(**sizes) if args.smoke else VideoBertConfig.base(**sizes)
    batch_size, max_tokens = (4, 64) if args.smoke else (32, 512)
    collator = MaskingCollator(vocab, max_length=max_tokens)
    batch = {k: v.to(dev) for k, v in collator(examples(batch_size, max_tokens, collator.vocab)).items()}
    torch.manual_seed(0)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    model = VideoBertForPretraining(config).to(dev, dtype).train()
    params = list(model.parameters())
    master = [p.detach().float().clone() for p in params]
    optimizer = torch.optim.AdamW(master, lr=1e-5, fused=dev.type == "cuda")
    losses = []

    def step():
        loss = model(**batch)["loss"]
        loss.backward()
        for m, p in zip(master, params):
            m.grad = None if p.grad is None else p.grad.float()
        optimizer.step()
        with torch.no_grad():
            for m, p in zip(master, params):
                p.copy_(m)
        model.zero_grad(set_to_none=True)
        losses.append(loss.detach())

    seconds = time_call(step, dev, repeats=8)
    peak_bytes = peak_memory_bytes(step, dev)
    tokens = int(batch["attention_mask"].sum())
    flops = training_step_flops(config, batch)
    peak = matmul_peak_flops(dtype, dev, 256 if args.smoke else 8192)
    return {"model": "tiny" if args.smoke else "base", "device": str(dev), "dtype": str(dtype).removeprefix("torch."),
            "batch": batch_size, "length": int(batch["input_ids"].shape[1]), "tokens_per_step": tokens,
            "seconds_per_step": seconds, "tokens_per_s": tokens / seconds, "model_tflops": flops / seconds / 1e12,
            "matmul_peak_tflops": peak / 1e12, "mfu": flops / seconds / peak,
            "peak_memory_gib": None if peak_bytes is None else peak_bytes / 2**30,
            "loss_first_last": [float(losses[0]), float(losses[-1])], "loss_finite": all(torch.isfinite(x).item() for x in losses)}


if __name__ == "__main__":
    piece_main(measure)
