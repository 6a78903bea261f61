"""`videobert extract` on a user's videos (issue 16): it needs weights it can check, it never
mixes features made two ways, and a run killed with SIGKILL finishes on the rerun with the
features of an uninterrupted run. Real videos written with PyAV; tiny clips keep S3D cheap."""

import hashlib
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
from videobert.features import S3D, iter_video_features
from videobert.features.weights import check_weights_file, digest_prefix_in_name
from videobert.video.synthetic import write_video

from cli_refusal import assert_refused

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--fps", "8", "--clip-frames", "8", "--size", "32", "--batch-size", "2", "--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    for i in range(3):
        write_video(root / f"clip{i}.mp4", fps=24, frames=40 + 8 * i, width=48, height=40)
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A torchvision-layout S3D state dict, named as torch.hub names files: <name>-<sha256 prefix>.pth."""
    root = tmp_path_factory.mktemp("weights")
    torch.manual_seed(3)
    torch.save(S3D().state_dict(), root / "s3d.pth")
    prefix = hashlib.sha256((root / "s3d.pth").read_bytes()).hexdigest()[:8]
    return (root / "s3d.pth").rename(root / f"s3d-{prefix}.pth")


def extract(videos: Path, out: Path, *extra: str) -> int:
    return main(["extract", "--videos", str(videos), "--out", str(out), *SMALL, *extra])


def features_of(out: Path) -> dict[str, np.ndarray]:
    return {video_id: features for video_id, features, _ in iter_video_features(out)}


def test_extract_needs_weights_or_an_explicit_random_choice(videos, tmp_path):
    with pytest.raises(SystemExit, match="S3D_Weights.KINETICS400_V1.*s3d-d76dad2f.pth.*--random-weights"):
        extract(videos, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert extract(videos, tmp_path / "out", "--random-weights") == 0
    assert sorted(features_of(tmp_path / "out")) == ["clip0", "clip1", "clip2"]


def test_weights_file_digest_and_layout_are_checked(videos, weights, tmp_path):
    assert digest_prefix_in_name("s3d-d76dad2f.pth") == "d76dad2f" and digest_prefix_in_name("s3d-v2.pth") is None
    assert check_weights_file(weights).startswith(digest_prefix_in_name(weights))
    renamed = tmp_path / "s3d-0badc0de.pth"
    renamed.write_bytes(weights.read_bytes())
    with pytest.raises(ValueError, match="name says SHA-256 0badc0de"):
        extract(videos, tmp_path / "a", "--weights", str(renamed))
    with pytest.raises(FileNotFoundError, match="s3d-d76dad2f.pth"):
        extract(videos, tmp_path / "b", "--weights", str(tmp_path / "missing.pth"))
    state = torch.load(weights, weights_only=True)
    state["features.0.0.0.weight"] = torch.zeros(32, 3, 1, 7, 7)  # a narrower first layer: another network
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"not a torchvision S3D state dict: .*shape mismatch.*features.0.0.0.weight"):
        extract(videos, tmp_path / "c", "--weights", str(tmp_path / "other.pth"))
    assert extract(videos, tmp_path / "d", "--weights", str(weights)) == 0


def test_a_rerun_with_other_weights_or_clips_is_refused_until_overwrite(videos, weights, tmp_path, caplog):
    out = tmp_path / "out"
    assert extract(videos, out, "--weights", str(weights)) == 0
    first = features_of(out)
    assert extract(videos, out, "--weights", str(weights), "--workers", "1") == 0  # same fingerprint: resumes
    (out / "clip1.safetensors").unlink()
    assert_refused(["extract", "--videos", str(videos), "--out", str(out), *SMALL, "--random-weights"], caplog,
                   r"weights: \"sha256:.*\" -> \"random\(seed=0\)\".*--overwrite")
    assert_refused(["extract", "--videos", str(videos), "--out", str(out), "--weights", str(weights), *SMALL, "--size", "48"],
                   caplog, r"size: 32 -> 48")
    assert sorted(features_of(out)) == ["clip0", "clip2"]  # nothing was mixed in
    assert extract(videos, out, "--random-weights", "--overwrite") == 0
    redone = features_of(out)
    assert sorted(redone) == ["clip0", "clip1", "clip2"] and not np.allclose(redone["clip0"], first["clip0"])


def test_killed_extraction_finishes_with_the_uninterrupted_features(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(6):
        write_video(videos / f"v{i:02d}.mp4", fps=24, frames=24, width=48, height=40)  # one clip each
    assert extract(videos, tmp_path / "whole", "--random-weights") == 0
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "videobert", "extract", "--videos", str(videos), "--out", str(out),
                                *SMALL, "--random-weights"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("v*.safetensors")):
        assert process.poll() is None and time.monotonic() < deadline, "extraction ended before a file appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 1 <= len(list(out.glob("v*.safetensors"))) < 6  # killed in the middle
    assert extract(videos, out, "--random-weights") == 0
    whole, resumed = features_of(tmp_path / "whole"), features_of(out)
    assert sorted(resumed) == sorted(whole)
    for video_id, features in whole.items():
        np.testing.assert_allclose(resumed[video_id], features, rtol=1e-5, atol=1e-6)
