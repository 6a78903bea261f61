"""The stages fit together through the commands alone (issue 16): pretraining takes its sizes and
its visual-word embeddings from the corpus, a real mismatch fails before DeepSpeed starts, an
empty held-out split trains without evaluation; `visual-words assign` writes the table `eval`
reads; `extract` needs weights it can check."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from videobert.cli import main
from videobert.corpus.store import read_corpus_info
from videobert.features.store import write_video_features
from videobert.models.videobert import VideoBertForPretraining
from videobert.text import default_tokenizer_dir
from videobert.train import load_train_config, read_metrics
from videobert.models.videobert.from_corpus import resolve_model_config, visual_words_tree
from videobert.models.videobert.family import FAMILY
from videobert.utils.fingerprint import file_digest
from videobert.visual_words import HierarchicalKMeans
from clips import clip_times

VTT = """WEBVTT

00:00:01.000 --> 00:00:05.000
now whisk the eggs in a bowl.

00:00:07.000 --> 00:00:12.000
add the flour and stir slowly.
"""
TINY_RUN = ["--config", "tiny", "steps=4", "batch_size=4", "micro_batch_size=2", "data.max_length=64", "eval_every=1",
            "save_every=4", "progress=false", "tensorboard=false"]



@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> Path:
    """Four videos' features (clustered), two transcripts, a 2 x 3 tree and a corpus with no held-out video,
    all made with the commands."""
    root = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(9, 1024)) * 4
    for i in range(4):
        features = centres[rng.integers(9, size=30)] + rng.normal(size=(30, 1024))
        write_video_features(root / "features", f"video{i}", features.astype(np.float32), clip_times(30))
    (root / "transcripts").mkdir()
    for i in (0, 1):
        (root / "transcripts" / f"video{i}.vtt").write_text(VTT)
    assert main(["visual-words", "fit", "--features", str(root / "features"), "--out", str(root / "tree.safetensors"),
                 "--levels", "2", "--branching", "3", "--no-progress"]) == 0
    assert main(["corpus", "build", "--features", str(root / "features"), "--visual-words", str(root / "tree.safetensors"),
                 "--transcripts", str(root / "transcripts"), "--out", str(root / "corpus"), "--heldout-fraction", "0"]) == 0
    return root


def test_corpus_records_its_tree(stages):
    info = read_corpus_info(stages / "corpus")
    assert info["num_visual_words"] == 9 and info["text_vocab_size"] == 30522
    assert Path(info["visual_words"]["path"]) == (stages / "tree.safetensors").resolve()
    assert info["visual_words"]["digest"] == file_digest(stages / "tree.safetensors")


@pytest.fixture(scope="module")
def run(stages) -> Path:
    """`videobert pretrain` on the corpus with no overrides but the tiny run's sizes."""
    import logging

    out = stages / "run"
    with _capture_warnings() as records:
        assert main(["pretrain", "--corpus", str(stages / "corpus"), "--out", str(out), *TINY_RUN]) == 0
    (out / "warnings.txt").write_text("\n".join(r.getMessage() for r in records if r.levelno >= logging.WARNING))
    return out


class _capture_warnings:
    """The log records emitted inside the block (module-scoped fixtures cannot use caplog)."""

    def __enter__(self):
        import logging

        self.records, self.handler = [], logging.Handler()
        self.handler.emit = self.records.append
        logging.getLogger().addHandler(self.handler)
        return self.records

    def __exit__(self, *exc):
        import logging

        logging.getLogger().removeHandler(self.handler)


def test_pretrain_takes_sizes_and_visual_embeddings_from_the_corpus(stages, run):
    out = run
    model = VideoBertForPretraining.from_pretrained(out / "model")
    assert (model.config.num_visual_words, model.config.text_vocab_size) == (9, 30522)
    # the embeddings are a learned projection of the tree's (standardised) leaf centroids, which stay as fitted
    leaves = torch.as_tensor(np.asarray(HierarchicalKMeans.load(stages / "tree.safetensors").leaf_centroids))
    assert model.config.visual_embeddings_from_centroids
    torch.testing.assert_close(model.embeddings.visual_embeddings.centroids, (leaves - leaves.mean(0)) / leaves.std())
    # the held-out split is empty: a warning, and training without evaluation (eval_every=1 asked for it)
    assert "training without held-out evaluation" in (out / "warnings.txt").read_text()
    assert read_metrics(out, "eval") == [] and len(read_metrics(out)) == 4


def test_pretrain_rerun_resumes_or_refuses_other_settings(stages, run, tmp_path, caplog):
    import shutil

    from cli_refusal import assert_refused

    out = tmp_path / "run"
    shutil.copytree(run, out)
    command = ["pretrain", "--corpus", str(stages / "corpus"), "--out", str(out), *TINY_RUN]
    assert_refused([*command, "optimizer.lr=1e-3"], caplog, r"optimizer.lr: 0.0005 -> 0.001\); rerun with overwrite=true \(--overwrite\)")
    assert_refused([*command, "model.init_visual_from=none"], caplog,
                   r"initial_file: \"[0-9a-f]+\" -> null; model.init_visual_from: \"corpus\" -> \"none\"")
    assert main([*command, "optimizer.lr=1e-3", "steps=1", "--overwrite"]) == 0
    assert len(read_metrics(out)) == 1 and not (out / "checkpoints" / "step_00000004").exists()


def test_pretrain_killed_with_sigkill_finishes_like_the_uninterrupted_run(stages, run, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from videobert.train.distributed import child_environment

    out = tmp_path / "run"
    command = ["pretrain", "--corpus", str(stages / "corpus"), "--out", str(out), *TINY_RUN, "save_every=1"]
    repo = Path(__file__).resolve().parents[1]
    env = child_environment({"PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])})
    process = subprocess.Popen([sys.executable, "-m", "videobert", *command], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "latest").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "model").exists()  # killed before the end
    assert main(command) == 0
    assert [r["loss"] for r in read_metrics(out)] == pytest.approx([r["loss"] for r in read_metrics(run)], rel=1e-6)
    resumed = VideoBertForPretraining.from_pretrained(out / "model").state_dict()
    for name, tensor in VideoBertForPretraining.from_pretrained(run / "model").state_dict().items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)


def test_visual_init_can_be_turned_off_or_pointed_elsewhere(stages, tmp_path):
    corpus = ["data.corpus=" + str(stages / "corpus")]
    config = load_train_config("tiny", [*corpus, "model.init_visual_from=none"])
    assert visual_words_tree(config) is None
    model = FAMILY.build_model(resolve_model_config(config), None, 0)
    assert not model.config.visual_embeddings_from_centroids and model.config.num_visual_words == 9
    other = HierarchicalKMeans(levels=1, branching=4, seed=0)
    other.fit(np.random.default_rng(1).normal(size=(40, 16)).astype(np.float32))
    other.save(tmp_path / "other.safetensors")
    config = load_train_config("tiny", [*corpus, f"model.init_visual_from={tmp_path / 'other.safetensors'}"])
    with pytest.raises(ValueError, match="has 4 visual words but the model has num_visual_words=9"):
        FAMILY.build_model(resolve_model_config(config), visual_words_tree(config), 0)


def test_a_changed_tree_is_refused(stages, tmp_path):
    import shutil

    shutil.copytree(stages / "corpus", tmp_path / "corpus")
    info = json.loads((tmp_path / "corpus" / "corpus.json").read_text())
    info["visual_words"]["digest"] = "0" * 64  # as if the tree file had been refitted since
    (tmp_path / "corpus" / "corpus.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="changed since corpus .* was built"):
        visual_words_tree(load_train_config("tiny", [f"data.corpus={tmp_path / 'corpus'}"]))


def test_a_real_mismatch_fails_before_deepspeed_naming_both_values(stages, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"num_visual_words=9 but model.overrides has num_visual_words=20"):
        main(["pretrain", "--corpus", str(stages / "corpus"), "--out", str(out), *TINY_RUN,
              'model.overrides={"num_visual_words": 20}'])
    assert not (out / "deepspeed_config.json").exists()  # DeepSpeed never started


def test_bert_initialisation_takes_the_corpus_sizes_and_tree(stages, tmp_path):
    bert = default_tokenizer_dir()  # a 6-layer BERT with BERT's uncased vocabulary (30,522 ids)
    config = load_train_config("tiny", [f"data.corpus={stages / 'corpus'}", f"model.init_from=bert:{bert}"])
    model = FAMILY.build_model(resolve_model_config(config), visual_words_tree(config), 0)
    assert model.config.num_visual_words == 9 and model.config.text_vocab_size == 30522
    assert model.config.visual_embeddings_from_centroids
    # a corpus built with another vocabulary cannot start from this BERT
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "whisk", "eggs"]) + "\n")
    assert main(["corpus", "build", "--features", str(stages / "features"), "--visual-words", str(stages / "tree.safetensors"),
                 "--transcripts", str(stages / "transcripts"), "--out", str(tmp_path / "corpus"),
                 "--tokenizer", str(tmp_path / "vocab.txt")]) == 0
    config = load_train_config("tiny", [f"data.corpus={tmp_path / 'corpus'}", f"model.init_from=bert:{bert}"])
    with pytest.raises(ValueError, match="text_vocab_size=7 but the BERT checkpoint .* has text_vocab_size=30522"):
        resolve_model_config(config)


def test_assign_writes_the_video_word_table_eval_reads(stages, tmp_path, capsys):
    from videobert.tasks.sources import load_video_words
    from videobert.features.store import read_video_features

    table_path = tmp_path / "words.npz"
    assert main(["visual-words", "assign", "--model", str(stages / "tree.safetensors"), "--features",
                 str(stages / "features"), "--out", str(table_path)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["videos"] == 4
    table = load_video_words(table_path)
    tree = HierarchicalKMeans.load(stages / "tree.safetensors")
    features, times = read_video_features(stages / "features", "video2")
    assert sorted(table) == [f"video{i}" for i in range(4)]
    np.testing.assert_array_equal(table["video2"][0], tree.assign(features))
    np.testing.assert_array_equal(table["video2"][1], times)
    with pytest.raises(SystemExit, match="needs a `videobert extract` directory"):
        np.save(tmp_path / "f.npy", features)
        main(["visual-words", "assign", "--model", str(stages / "tree.safetensors"), "--features", str(tmp_path / "f.npy"),
              "--out", str(tmp_path / "t.npz")])


def test_corpus_build_records_bad_feature_files_and_orphan_transcripts(stages, tmp_path, caplog):
    import shutil

    shutil.copytree(stages / "features", tmp_path / "features")
    shutil.copytree(stages / "transcripts", tmp_path / "transcripts")
    bad = np.full((5, 1024), np.nan, dtype=np.float32)
    write_video_features(tmp_path / "features", "video9", bad, clip_times(5))
    (tmp_path / "transcripts" / "ghost.vtt").write_text(VTT)
    assert main(["corpus", "build", "--features", str(tmp_path / "features"), "--visual-words",
                 str(stages / "tree.safetensors"), "--transcripts", str(tmp_path / "transcripts"),
                 "--out", str(tmp_path / "corpus")]) == 0
    info = read_corpus_info(tmp_path / "corpus")
    assert info["videos_failed"] == ["video9"]
    manifest = [json.loads(line) for line in (tmp_path / "corpus" / "manifest.jsonl").read_text().splitlines()]
    assert "video9" in next(r["reason"] for r in manifest if r["key"] == "video9")
    assert "NaN" in next(r["reason"] for r in manifest if r["key"] == "video9")
    assert "ghost" in caplog.text and "no extracted video" in caplog.text


def test_bad_features_are_named_by_video(stages, tmp_path):
    import shutil

    shutil.copytree(stages / "features", tmp_path / "features")
    bad = np.zeros((4, 1024), dtype=np.float32)
    bad[2, 5] = np.nan
    write_video_features(tmp_path / "features", "video1", bad, clip_times(4))  # replaces a good file
    with pytest.raises(ValueError, match=r"NaN.*clip of video 'video1'.*video1.safetensors"):
        main(["visual-words", "fit", "--features", str(tmp_path / "features"), "--out", str(tmp_path / "t.safetensors"),
              "--levels", "1", "--branching", "3", "--no-progress"])
    small = HierarchicalKMeans(levels=1, branching=3, seed=0)
    small.fit(np.random.default_rng(0).normal(size=(30, 16)).astype(np.float32))
    small.save(tmp_path / "small.safetensors")
    with pytest.raises(ValueError, match="fitted on 16-d features but .* holds 1024-d features"):
        main(["corpus", "build", "--features", str(stages / "features"), "--visual-words", str(tmp_path / "small.safetensors"),
              "--out", str(tmp_path / "corpus")])


def test_a_pretrained_model_of_other_sizes_is_refused(stages, tmp_path):
    from videobert.models.videobert import VideoBertConfig

    VideoBertForPretraining(VideoBertConfig.tiny(num_visual_words=20)).save_pretrained(tmp_path / "model")
    config = load_train_config("tiny", [f"data.corpus={stages / 'corpus'}", f"model.init_from={tmp_path / 'model'}"])
    with pytest.raises(ValueError, match=r"num_visual_words=9 but the model .*model has num_visual_words=20"):
        resolve_model_config(config)
    assert visual_words_tree(config) is None  # a trained model keeps its own visual-word embeddings
