"""Captioning throughput: segment features per second and captioner training tokens per second.

Setup (issue 14), on the threads torch is given (``BENCH_THREADS``, default 1):
- ``segment_features``: ``TemplateEncoder.encode`` (the paper's fill-in template read by VideoBERT
  with a segment's visual words, outputs -> ``[n, 2H]``) on 256 segments of 4 to 24 visual words
  (YouCook II segments average ~20 s, ~13 clips of 1.5 s), batch 64; the model is the demo's
  (2 layers, hidden 128, a cut-down WordPiece vocabulary, 144 visual words), BERT-base sized
  (12 layers, hidden 768, BERT's vocabulary) when ``BENCH_CAPTION_BASE=1``. Figure: segments/s.
- ``captioner_step``: one training step of the captioner at the paper's settings (2 layers, hidden
  128, dropout 0.4, batch 128, AdamW) on ``videobert+s3d`` inputs (``2 * 128 + 1024`` wide,
  4 to 24 clips) with YouCook II-like captions (4 to 16 words from a 2,000-word vocabulary).
  Figure: caption tokens (words + ``<eos>``) per second, clip tokens per second beside it.
- ``caption_greedy`` / ``caption_beam5``: captions of 256 segments per second.

Run: ``pytest benchmarks/bench_captioning.py`` (figures printed at the end), or
``pytest benchmarks/bench_captioning.py --benchmark-disable`` to check that it runs.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.models.videobert.template import TEMPLATE, TemplateEncoder
from videobert.tasks.captioning import CaptionerTrainConfig, train_captioner
from videobert.tasks.captioning.captioner import Captioner, CaptionerConfig, pad_inputs
from videobert.tasks.captioning.train import _caption_batch, _optimizer
from videobert.tasks.captioning.vocabulary import CaptionVocabulary
from videobert.text import WordPieceTokenizer, write_subset_vocab

SEGMENTS, BATCH, VOCAB = 256, 128, 2000
INPUT_DIM = 2 * 128 + 1024
RESULTS: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def segment_words():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 144, int(rng.integers(4, 25))) for _ in range(SEGMENTS)]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    torch.manual_seed(0)
    if os.environ.get("BENCH_CAPTION_BASE") == "1":
        tokenizer = WordPieceTokenizer()
        config = VideoBertConfig.base(num_visual_words=144, max_position_embeddings=128)
    else:  # the demo's cut-down vocabulary: BERT's pieces of the template
        tokenizer = write_subset_vocab([TEMPLATE.replace("[MASK]", "cut")], tmp_path_factory.mktemp("vocab") / "vocab.txt")
        config = VideoBertConfig.tiny(text_vocab_size=tokenizer.vocab_size, num_visual_words=144, hidden_size=128,
                                      intermediate_size=256)
    return TemplateEncoder(VideoBertForPretraining(config).eval(), tokenizer, batch_size=64)


def test_segment_features(benchmark, encoder, segment_words):
    out = benchmark.pedantic(encoder.encode, args=(segment_words,), rounds=3, warmup_rounds=1)
    assert len(out) == SEGMENTS and out[0].shape == (len(segment_words[0]), encoder.output_dim)
    if benchmark.stats:
        RESULTS["segment features"] = f"{SEGMENTS / benchmark.stats.stats.median:,.0f} segments/s " \
                                      f"(hidden {encoder.output_dim // 2})"


@pytest.fixture(scope="module")
def training_batch():
    rng = np.random.default_rng(1)
    vocab = CaptionVocabulary.build([f"w{i}" for i in range(VOCAB - 4)])
    inputs = [rng.normal(size=(int(rng.integers(4, 25)), INPUT_DIM)).astype(np.float32) for _ in range(BATCH)]
    captions = [" ".join(f"w{j}" for j in rng.integers(0, VOCAB - 4, int(rng.integers(4, 17)))) for _ in range(BATCH)]
    return vocab, inputs, captions


def test_captioner_step(benchmark, training_batch):
    vocab, inputs, captions = training_batch
    torch.manual_seed(0)
    model = Captioner(CaptionerConfig(INPUT_DIM, len(vocab)), vocab).train()
    optimizer = _optimizer(model, CaptionerTrainConfig())
    features, mask = pad_inputs(inputs)
    decoder_in, targets = _caption_batch([vocab.encode(c) for c in captions], vocab)

    def step():
        logits = model(features, mask, decoder_in)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=vocab.pad_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    if benchmark.stats:
        seconds = benchmark.stats.stats.median
        RESULTS["captioner training"] = (f"{int((targets != vocab.pad_id).sum()) / seconds:,.0f} caption tokens/s, "
                                         f"{int(mask.sum()) / seconds:,.0f} clip tokens/s (batch {BATCH})")


@pytest.fixture(scope="module")
def trained(training_batch):
    vocab, inputs, captions = training_batch
    result = train_captioner(inputs, captions, CaptionerTrainConfig(steps=2, batch_size=BATCH))
    return result.captioner, inputs


@pytest.mark.parametrize("beam", [1, 5], ids=["greedy", "beam5"])
def test_caption(benchmark, trained, beam):
    captioner, inputs = trained
    captioner.config.max_caption_words = 16
    out = benchmark.pedantic(captioner.generate, args=(inputs,), kwargs={"beam_size": beam}, rounds=2, warmup_rounds=0)
    assert len(out) == len(inputs)
    if benchmark.stats:
        RESULTS[f"captions, beam {beam}"] = f"{len(inputs) / benchmark.stats.stats.median:,.1f} segments/s"


def teardown_module():
    for name, figure in RESULTS.items():
        print(f"\n{name}: {figure}", end="")
