"""Alignment accuracy (own sentence against another segment's) and the narration it can read instead."""

import numpy as np
import pytest
import torch

from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.tasks.alignment import alignment_accuracy, narrated
from videobert.tasks.annotations import Segment
from videobert.tasks.inputs import build_sequence, pack
from videobert.text import WordPieceTokenizer
from clips import clip_times



def test_alignment_accuracy_scores_own_and_other_sentences(tmp_path):
    torch.manual_seed(0)
    model = VideoBertForPretraining(VideoBertConfig.tiny()).eval()
    tokenizer = WordPieceTokenizer()
    table = {"v": (np.arange(12) * 5, clip_times(12))}
    segments = [Segment("v", 0, 6, "cut the onion", verb="cut", object="onion"),
                Segment("v", 6, 12, "stir the egg", verb="stir", object="egg"),
                Segment("v", 12, 18, "pour water", verb="pour", object="water"),
                Segment("v", 30, 40, "nothing here", verb="add", object="salt")]   # no clips: left out
    result = alignment_accuracy(model, tokenizer, segments, table, seed=3, batch_size=2)
    # the same pairs by hand: each segment with its own sentence (label 1) and with the one the seed picks (label 0)
    vocab = model.config.vocab
    rng = np.random.default_rng(3)
    texts = tokenizer.encode_batch([s.sentence for s in segments[:3]])
    words = [table["v"][0][0:4], table["v"][0][4:8], table["v"][0][8:12]]
    correct = []
    with torch.no_grad():
        for i in range(3):
            other = int(rng.choice([j for j in range(3) if j != i]))
            for text, label in ((texts[i], 1), (texts[other], 0)):
                batch = pack([build_sequence(vocab, text, vocab.visual_ids(words[i]).tolist())], vocab.pad_id)
                correct.append(int(model.alignment_logits(model.encode(**batch))[0] > 0) == label)
    assert result["pairs"] == 6 and result["chance"] == 0.5
    assert result["accuracy"] == pytest.approx(np.mean(correct))
    assert result["positive_accuracy"] == pytest.approx(np.mean(correct[0::2]))
    with pytest.raises(ValueError, match="need at least 2 segments with clips, got 1 of 2"):
        alignment_accuracy(model, tokenizer, segments[2:], table)


def test_alignment_reads_the_narration_spoken_during_each_segment(tmp_path):
    (tmp_path / "v1.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nokay.\n\n"
                                     "00:00:01.000 --> 00:00:05.000\nnow let me show you how to spin the ring.\n")
    segments = [Segment("v1", 0.8, 5.2, "spin the orange ring"), Segment("v1", 6.0, 8.0, "push the red square"),
                Segment("v2", 0.0, 2.0, "lift the green triangle")]
    out = narrated(segments, tmp_path)
    # the longest overlap wins; no sentence inside the span, or no transcript: left out
    assert [(s.video_id, s.start, s.sentence) for s in out] == [("v1", 0.8, "now let me show you how to spin the ring.")]
