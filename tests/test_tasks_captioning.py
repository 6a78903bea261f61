"""Captioning: the template and segment features per variant (real tiny VideoBERT, real tokenizer), segment
selection, the captioner (overfits, greedy = beam 1, beam search = exhaustive search, save/load)."""

import copy
import itertools

import numpy as np
import pytest
import torch

from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.tasks.annotations import Segment
from videobert.models.videobert.template import TEMPLATE, TemplateEncoder
from videobert.tasks.captioning import (CaptionerTrainConfig, Captioner, CaptionVocabulary, VideoClips, caption_words,
                                        select_segments, train_captioner, variant_inputs)
from videobert.tasks.captioning.captioner import pad_inputs
from videobert.tasks.captioning.decoding import beam_search, greedy_decode
from videobert.vocab import UnifiedVocab
from clips import clip_times

SMALL = dict(hidden_size=32, num_heads=2, intermediate_size=64)



@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VideoBertForPretraining(VideoBertConfig.tiny()).eval()



def test_template_reads_the_papers_sentence_with_five_masks(model, tokenizer):
    encoder = TemplateEncoder(model, tokenizer)
    vocab = UnifiedVocab()
    ids, types = encoder.sequence(np.array([4, 9, 2]))
    assert ids[0] == vocab.cls_id and ids[-1] == vocab.sep_id
    text = ids[1 : encoder.video_start - 1]
    assert [i for i, t in enumerate(ids) if t == vocab.mask_id] == encoder.mask_positions and len(encoder.mask_positions) == 5
    pieces = tokenizer.encode_batch(["now let's", "the", "to the", ", and then", "the", "."])
    assert text == [*pieces[0], vocab.mask_id, *pieces[1], vocab.mask_id, *pieces[2], vocab.mask_id, *pieces[3],
                    vocab.mask_id, *pieces[4], vocab.mask_id, *pieces[5]]
    assert TEMPLATE.count("[MASK]") == 5
    assert ids[encoder.video_start - 1] == vocab.video_sep_id
    assert ids[encoder.video_start : -1] == [vocab.visual_offset + w for w in (4, 9, 2)]
    assert types == [0] * (encoder.video_start - 1) + [1] * 5  # [>], three words, [SEP]
    with pytest.raises(ValueError, match="visual words"):
        encoder.sequence(np.array([], dtype=np.int64))


def test_features_per_variant(model, tokenizer):
    """videobert: each video token's output beside the mean of the five mask outputs, checked against a hand-built
    single-sequence pass; s3d: the clips' own features; videobert+s3d: both, in that order."""
    encoder = TemplateEncoder(model, tokenizer, batch_size=2)
    words = [np.array([3, 7, 7]), np.array([1, 2, 3, 4, 5]), np.array([11])]
    outputs = encoder.encode(words)
    hidden = model.config.hidden_size
    assert [o.shape for o in outputs] == [(3, 2 * hidden), (5, 2 * hidden), (1, 2 * hidden)] and encoder.output_dim == 2 * hidden
    for w, out in zip(words, outputs):
        ids, types = encoder.sequence(w)
        with torch.no_grad():
            h = model.encode(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long), torch.tensor([types]))[0]
        np.testing.assert_allclose(out[:, :hidden], h[encoder.video_start : encoder.video_start + len(w)].numpy(), atol=1e-5)
        np.testing.assert_allclose(out[:, hidden:], h[encoder.mask_positions].mean(0).expand(len(w), -1).numpy(), atol=1e-5)
    s3d = [np.random.default_rng(i).normal(size=(len(w), 1024)).astype(np.float32) for i, w in enumerate(words)]
    widths = {v: [x.shape for x in variant_inputs(v, s3d, outputs)] for v in ("s3d", "videobert", "videobert+s3d")}
    assert widths == {"s3d": [(3, 1024), (5, 1024), (1, 1024)], "videobert": [(3, 2 * hidden), (5, 2 * hidden), (1, 2 * hidden)],
                      "videobert+s3d": [(3, 2 * hidden + 1024), (5, 2 * hidden + 1024), (1, 2 * hidden + 1024)]}
    both = variant_inputs("videobert+s3d", s3d, outputs)[1]
    np.testing.assert_array_equal(both[:, : 2 * hidden], outputs[1])
    np.testing.assert_array_equal(both[:, 2 * hidden :], s3d[1])
    with pytest.raises(ValueError, match="unknown captioning variant"):
        variant_inputs("i3d", s3d, outputs)
    with pytest.raises(ValueError, match="needs the model's clip features"):
        variant_inputs("videobert", s3d, None)


def test_segments_select_their_clips_and_skips_are_counted():
    rng = np.random.default_rng(0)
    clips = {"v": VideoClips(rng.normal(size=(20, 8)).astype(np.float32), clip_times(20), np.arange(20) % 5)}
    segments = [Segment("v", 0.0, 4.6, "Cut the onion."),     # clip centres 0.75, 2.25, 3.75
                Segment("v", 5.0, 5.1, "pour water"),         # no clip centre inside
                Segment("w", 0.0, 3.0, "add salt"),           # no features for the video
                Segment("v", 6.0, 9.0, "   "),                # empty reference
                Segment("v", 0.0, 30.0, "stir everything")]   # 20 clips, more than max_clips
    kept, skipped = select_segments(segments, clips, max_clips=6)
    assert skipped == {"missing_video": 1, "no_clips": 1, "empty_reference": 1}
    assert [s.segment_id for s in kept] == ["v#0", "v#3"]  # the index of the annotation within its video
    np.testing.assert_array_equal(kept[0].rows, [0, 1, 2])
    assert len(kept[1].rows) == 6 and kept[1].rows[0] == 0 and kept[1].rows[-1] == 19 and np.all(np.diff(kept[1].rows) > 0)


def test_vocabulary_words_and_round_trip(tmp_path):
    assert caption_words("Let's stir-fry 1/2 cup of rice, then ADD 1.5 tbsp oil.") == \
        ["let's", "stir-fry", "1/2", "cup", "of", "rice", "then", "add", "1.5", "tbsp", "oil"]
    vocab = CaptionVocabulary.build(["cut the onion", "cut the tomato", "Slice the bread."], min_count=2)
    assert vocab.words == ["<pad>", "<bos>", "<eos>", "<unk>", "the", "cut"]  # by falling count; "slice" etc. seen once
    assert vocab.encode("Cut the bread") == [5, 4, vocab.unk_id]
    assert vocab.decode([5, 4, vocab.unk_id, vocab.eos_id, 4]) == "cut the"
    vocab.save(tmp_path / "vocab.txt")
    assert CaptionVocabulary.load(tmp_path / "vocab.txt").words == vocab.words


CAPTIONS = ["cut the onion", "pour the olive oil into the pan", "add salt and pepper", "whisk the eggs",
            "spread butter on the bread", "cut the bread"]


def distinct_inputs(dim=12):
    rng = np.random.default_rng(0)
    return [rng.normal(size=(int(rng.integers(2, 6)), dim)).astype(np.float32) for _ in CAPTIONS]


@pytest.fixture(scope="module")
def overfit():
    inputs = distinct_inputs()
    config = CaptionerTrainConfig(steps=120, batch_size=len(CAPTIONS), lr=3e-3, dropout=0.0, seed=0, **SMALL)
    return inputs, train_captioner(inputs, CAPTIONS, config)


def test_captioner_overfits_a_handful_of_segments(overfit):
    inputs, result = overfit
    assert result.losses[-1] < 0.05 < result.losses[0]
    assert result.captioner.generate(inputs) == CAPTIONS
    assert result.captioner.generate(inputs, beam_size=3) == CAPTIONS
    assert result.caption_tokens == 120 * sum(len(c.split()) + 1 for c in CAPTIONS)


def test_training_is_deterministic_for_a_seed():
    inputs = distinct_inputs()
    runs = [train_captioner(inputs, CAPTIONS, CaptionerTrainConfig(steps=4, batch_size=4, seed=s, **SMALL)).losses
            for s in (3, 3, 4)]
    assert runs[0] == runs[1] != runs[2]


@pytest.fixture(scope="module")
def half_trained():
    """A captioner that has not converged: its next-word distributions are spread out."""
    config = CaptionerTrainConfig(steps=6, batch_size=6, seed=1, max_caption_words=3, **SMALL)
    return train_captioner(distinct_inputs(), CAPTIONS, config).captioner


def test_beam_size_one_is_greedy(half_trained):
    inputs = distinct_inputs()
    padded, mask = pad_inputs(inputs)
    with torch.no_grad():
        memory = half_trained.encode(padded, mask)
        assert beam_search(half_trained, memory, mask, 1, 3) == greedy_decode(half_trained, memory, mask, 3)
    assert half_trained.generate(inputs, beam_size=1) == [half_trained.vocabulary.decode(r) for r in
                                                         greedy_decode(half_trained, memory, mask, 3)]


def test_a_wide_beam_finds_the_most_probable_caption(half_trained):
    """Known answer by exhaustive search over a cut-down vocabulary: every caption of at most 2 words."""
    model = copy.deepcopy(half_trained)
    vocab = model.vocabulary
    allowed = [vocab.index[w] for w in ("the", "cut", "onion")]
    with torch.no_grad():  # forbid every other word through the output bias
        for i in range(len(vocab)):
            if i not in allowed + [vocab.eos_id]:
                model.output_bias[i] = -1e9
    inputs = distinct_inputs()[:3]
    padded, mask = pad_inputs(inputs)

    def log_prob(words, row):
        tokens = torch.tensor([[vocab.bos_id, *words]])
        logits = model.logits(tokens, model.encode(padded[row : row + 1], mask[row : row + 1]), mask[row : row + 1])[0]
        logits[:, [vocab.pad_id, vocab.bos_id, vocab.unk_id]] = float("-inf")
        if len(words) == 2:  # after the last allowed word only <eos> may follow
            logits[2, torch.arange(len(vocab)) != vocab.eos_id] = float("-inf")
        lp = torch.log_softmax(logits, dim=-1)
        return float(sum(lp[t, w] for t, w in enumerate([*words, vocab.eos_id])))

    with torch.no_grad():
        memory = model.encode(padded, mask)
        found = beam_search(model, memory, mask, beam_size=16, max_words=2)
        for row in range(3):
            candidates = [list(c) for n in range(3) for c in itertools.product(allowed, repeat=n)]
            best = max(candidates, key=lambda c: log_prob(c, row))
            assert found[row][: len(best) + 1] == [*best, vocab.eos_id]


def test_save_and_load_round_trip(overfit, tmp_path):
    inputs, result = overfit
    result.captioner.save_pretrained(tmp_path / "captioner")
    assert {p.name for p in (tmp_path / "captioner").iterdir()} == {"model.safetensors", "config.json", "vocab.txt"}
    loaded = Captioner.from_pretrained(tmp_path / "captioner")
    assert loaded.config == result.captioner.config and loaded.vocabulary.words == result.captioner.vocabulary.words
    for key, value in result.captioner.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    assert loaded.generate(inputs, beam_size=3) == CAPTIONS
    (tmp_path / "captioner" / "config.json").write_text('{"hidden_size": 4}')
    with pytest.raises(ValueError, match="not a captioner"):
        Captioner.from_pretrained(tmp_path / "captioner")
