"""No stale mixing (issue 16): every resumable stage keeps a fingerprint beside its outputs; the
same settings resume, other settings are refused naming what changed, `--overwrite` starts over.
(Extraction: tests/test_own_videos_extract.py; pretraining: tests/test_own_videos_stages.py.)"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from videobert.cli import main
from videobert.corpus.store import CorpusSplit, read_corpus_info
from videobert.features.store import write_video_features
from videobert.utils.fingerprint import StaleOutputError, claim_output, read_fingerprint

from cli_refusal import assert_refused
from clips import clip_times

REPO = Path(__file__).resolve().parents[1]
VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:05.000\nnow whisk the eggs.\n\n00:00:08.000 --> 00:00:12.000\nadd the flour.\n"



def test_claim_output_resumes_refuses_and_overwrites(tmp_path):
    out = tmp_path / "out"
    claim_output(out / "fingerprint.json", "stage", {"seed": 0, "size": 32})
    (out / "part").write_text("made with seed 0")
    claim_output(out / "fingerprint.json", "stage", {"seed": 0, "size": 32})  # same: resume
    assert (out / "part").exists()
    with pytest.raises(StaleOutputError, match=r"seed: 0 -> 1; size: 32 -> 48\); rerun with --fresh"):
        claim_output(out / "fingerprint.json", "stage", {"seed": 1, "size": 48}, restart_hint="--fresh")

    def dies_while_clearing():
        (out / "part").unlink()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        claim_output(out / "fingerprint.json", "stage", {"seed": 1, "size": 32}, overwrite=True, clear=dies_while_clearing)
    assert read_fingerprint(out / "fingerprint.json") == {"seed": 0, "size": 32}  # still refused, never half-resumed
    claim_output(out / "fingerprint.json", "stage", {"seed": 1, "size": 32}, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["fingerprint.json"]
    assert read_fingerprint(out / "fingerprint.json") == {"seed": 1, "size": 32}


@pytest.fixture
def inputs(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(6):
        write_video_features(tmp_path / "features", f"v{i}", rng.normal(size=(12, 1024)).astype(np.float32), clip_times(12))
    (tmp_path / "transcripts").mkdir()
    (tmp_path / "transcripts" / "v0.vtt").write_text(VTT)
    assert main(["visual-words", "fit", "--features", str(tmp_path / "features"), "--out", str(tmp_path / "tree.safetensors"),
                 "--levels", "1", "--branching", "4", "--no-progress"]) == 0
    return tmp_path


def build_command(root: Path, *extra: str) -> list[str]:
    return ["corpus", "build", "--features", str(root / "features"), "--visual-words", str(root / "tree.safetensors"),
            "--transcripts", str(root / "transcripts"), "--out", str(root / "corpus"), *extra]


def build(root: Path, *extra: str) -> int:
    return main(build_command(root, *extra))


def test_corpus_rebuilt_with_other_settings_is_refused_then_overwritten(inputs, caplog):
    assert build(inputs, "--seed", "0", "--heldout-fraction", "0.5") == 0
    parts = {p.name: p.stat().st_mtime_ns for p in (inputs / "corpus" / "parts").iterdir()}
    assert build(inputs, "--seed", "0", "--heldout-fraction", "0.5") == 0  # same: every part kept
    assert {p.name: p.stat().st_mtime_ns for p in (inputs / "corpus" / "parts").iterdir()} == parts
    assert_refused(build_command(inputs, "--seed", "1", "--heldout-fraction", "0"), caplog,
                   r"config.heldout_fraction: 0.5 -> 0.0; config.seed: 0 -> 1\); rerun with --overwrite")
    assert read_corpus_info(inputs / "corpus")["config"]["heldout_fraction"] == 0.5  # nothing mixed in
    (inputs / "transcripts" / "v0.vtt").write_text(VTT.replace("eggs", "cream"))
    assert_refused(build_command(inputs, "--seed", "0", "--heldout-fraction", "0.5"), caplog,
                   r"sources.transcripts.v0: \"[0-9a-f]+\" -> \"[0-9a-f]+\"")
    assert build(inputs, "--seed", "1", "--heldout-fraction", "0", "--overwrite") == 0
    info = read_corpus_info(inputs / "corpus")
    assert info["config"]["seed"] == 1 and info["splits"]["heldout"]["videos"] == 0 and info["splits"]["train"]["videos"] == 6
    assert len((inputs / "corpus" / "manifest.jsonl").read_text().splitlines()) == 6  # the old manifest went


def test_visual_words_fit_keeps_refuses_or_refits(inputs, capsys, caplog):
    tree = inputs / "tree.safetensors"
    before = tree.stat().st_mtime_ns
    fit = ["visual-words", "fit", "--features", str(inputs / "features"), "--out", str(tree), "--levels", "1",
           "--branching", "4", "--no-progress"]
    assert main(fit) == 0 and tree.stat().st_mtime_ns == before  # same features and settings: kept
    assert "earlier" in capsys.readouterr().out
    assert_refused([*fit, "--seed", "5"], caplog, r"seed: 0 -> 5")
    write_video_features(inputs / "features", "v9", np.ones((3, 1024), np.float32), clip_times(3))
    assert_refused(fit, caplog, r"features.files: .*; features.videos: 6 -> 7")
    assert main([*fit, "--seed", "5", "--overwrite"]) == 0 and tree.stat().st_mtime_ns != before


def test_export_features_refuses_another_models_shards(tmp_path):
    from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
    from videobert.tasks.export import SegmentInput, export_features

    segments = [SegmentInput("a", 0.0, 3.0, (1, 2, 3)), SegmentInput("b", 0.0, 1.5, (4,))]
    config = VideoBertConfig.tiny(num_visual_words=9, hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    torch.manual_seed(0)
    first = VideoBertForPretraining(config).eval()
    export_features(first, segments, tmp_path, segments_per_shard=1)
    export_features(first, segments, tmp_path, segments_per_shard=1)  # same model and segments: resumes
    other = VideoBertForPretraining(config).eval()
    with pytest.raises(StaleOutputError, match="model:"):
        export_features(other, segments, tmp_path, segments_per_shard=1)
    paths = export_features(other, segments, tmp_path, segments_per_shard=1, overwrite=True)
    assert len(paths) == 2 and all(p.exists() for p in paths)


def test_killed_corpus_build_finishes_like_an_uninterrupted_one(tmp_path):
    """SIGKILL in the middle of `videobert corpus build`, then the same command: the corpus equals a
    build that was never interrupted."""
    rng = np.random.default_rng(1)
    (tmp_path / "transcripts").mkdir()
    for i in range(150):
        write_video_features(tmp_path / "features", f"v{i:03d}", rng.normal(size=(8, 16)).astype(np.float32), clip_times(8))
        (tmp_path / "transcripts" / f"v{i:03d}.vtt").write_text(VTT)
    assert main(["visual-words", "fit", "--features", str(tmp_path / "features"), "--out", str(tmp_path / "tree.safetensors"),
                 "--levels", "1", "--branching", "4", "--no-progress"]) == 0
    command = ["corpus", "build", "--features", str(tmp_path / "features"), "--visual-words", str(tmp_path / "tree.safetensors"),
               "--transcripts", str(tmp_path / "transcripts"), "--heldout-fraction", "0.2"]
    assert main([*command, "--out", str(tmp_path / "whole")]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "videobert", *command, "--out", str(tmp_path / "killed")], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "killed" / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while not (manifest.exists() and len(manifest.read_text().splitlines()) >= 10):
        assert process.poll() is None and time.monotonic() < deadline, "the build ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "corpus.json").exists()
    assert main([*command, "--out", str(tmp_path / "killed")]) == 0
    whole, killed = read_corpus_info(tmp_path / "whole"), read_corpus_info(tmp_path / "killed")
    assert killed["splits"] == whole["splits"]
    for split in ("train", "heldout"):
        a, b = CorpusSplit(tmp_path / "whole", split), CorpusSplit(tmp_path / "killed", split)
        assert a.video_ids == b.video_ids
        for name in ("words", "text_ids", "sentences", "sentence_times", "chunks", "videos"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_a_safetensors_file_is_known_by_its_tensors_not_its_bytes(tmp_path):
    """Saving the same tensors in two processes can order the header differently; the digest must not care."""
    from videobert.utils.fingerprint import file_digest

    save = ("import sys, numpy as np; from safetensors.numpy import save_file; "
            "save_file({f'w{i}': np.full((2, 3), i, np.float32) for i in range(40)}, sys.argv[1], metadata={'a': '1', 'b': '2'})")
    for name in ("one", "two"):
        subprocess.run([sys.executable, "-c", save, str(tmp_path / f"{name}.safetensors")], check=True)
    assert file_digest(tmp_path / "one.safetensors") == file_digest(tmp_path / "two.safetensors")
    subprocess.run([sys.executable, "-c", save.replace("np.full((2, 3), i", "np.full((2, 3), i + 1"),
                    str(tmp_path / "three.safetensors")], check=True)
    assert file_digest(tmp_path / "three.safetensors") != file_digest(tmp_path / "one.safetensors")
