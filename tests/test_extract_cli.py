"""`videobert extract` end to end on small real videos (random S3D weights, tiny clips)."""

import json

import numpy as np
import pytest
import torch

from videobert.cli import main
from videobert.features import S3D, iter_video_features, load_feature_matrix
from videobert.features.extract import ExtractConfig, extract_features, pyav_threads_per_worker
from videobert.video import normalize_clips, read_raw_clips
from videobert.video.reader import make_decoder
from videobert.video.sampling import ClipSpec
from videobert.video.synthetic import write_audio_only, write_video

# Tiny settings: 8 fps, 8-frame clips (S3D needs T >= 8), 32 px (S3D's minimum useful size) keep a model call cheap.
SMALL = ["--fps", "8", "--clip-frames", "8", "--size", "32", "--batch-size", "3", "--no-progress"]
SPEC = ClipSpec(fps=8, clip_frames=8, size=32)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "alpha.mp4", fps=30, frames=60, width=64, height=48)           # 2 s: 2 clips
    write_video(root / "beta.webm", codec="libvpx-vp9", fps=25, frames=20, width=48, height=64)
    write_video(root / "gamma.avi", codec="mjpeg", fps=24, frames=30, width=64, height=48)
    write_video(root / "delta.mkv", fps=30, frames=5, width=64, height=48)            # shorter than a clip
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(3000))
    write_audio_only(root / "speech.m4a")  # not a video extension: not listed
    (root / "notes.txt").write_text("not a video")
    return root


def read_manifest(out):
    return {r["key"]: r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}


def test_extract_resume_and_failures(tmp_path, videos):
    out = tmp_path / "out"
    torch.save(_model().state_dict(), tmp_path / "s3d.pth")
    assert main(["extract", "--videos", str(videos), "--out", str(out), "--weights", str(tmp_path / "s3d.pth"),
                 "--workers", "2", *SMALL]) == 0
    manifest = read_manifest(out)
    assert {k: r["status"] for k, r in manifest.items()} == {
        "alpha": "done", "beta": "done", "gamma": "done", "delta": "done", "broken": "failed"}
    assert "CorruptVideoError" in manifest["broken"]["reason"] and "broken.mp4" in manifest["broken"]["reason"]
    results = {vid: (f, t) for vid, f, t in iter_video_features(out)}
    assert manifest["alpha"]["clips"] == 2 and results["alpha"][0].shape == (2, 1024)
    assert results["delta"][0].shape == (1, 1024)

    # features equal S3D on the same clips computed directly, batch composition notwithstanding
    model = _model()
    for vid, name in [("alpha", "alpha.mp4"), ("beta", "beta.webm")]:
        raw = list(read_raw_clips(videos / name, SPEC, backend="pyav"))
        with torch.no_grad():
            direct = model.embed(normalize_clips(torch.from_numpy(np.stack([c.frames for c in raw]))))
        np.testing.assert_allclose(results[vid][0], direct.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(results[vid][1], [(c.start, c.end) for c in raw])

    # resume: finished files are untouched, the failure is retried and failed again
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")}
    summary = extract_features(ExtractConfig(videos=str(videos), out=str(out), weights=str(tmp_path / "s3d.pth"),
                                             fps=8, clip_frames=8, size=32, workers=0, progress=False))
    assert sorted(summary.skipped) == ["alpha", "beta", "delta", "gamma"] and summary.done == []
    assert list(summary.failed) == ["broken"]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.safetensors")} == mtimes
    assert load_feature_matrix(out).shape == (2 + 1 + 2 + 1, 1024)


def test_workers_and_batching_do_not_change_results(tmp_path, videos):
    outs = []
    for workers, batch in [(0, 1), (2, 5)]:
        out = tmp_path / f"w{workers}"
        summary = extract_features(ExtractConfig(videos=str(videos), out=str(out), fps=8, clip_frames=8, size=32,
                                                 workers=workers, batch_size=batch, seed=3, progress=False))
        assert len(summary.done) == 4
        outs.append({vid: f for vid, f, _ in iter_video_features(out)})
    for vid in outs[0]:
        np.testing.assert_allclose(outs[0][vid], outs[1][vid], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("workers,cores,threads", [(1, 2, 1), (0, 16, 15), (4, 16, 3), (8, 4, 1), (3, 16, 4)])
def test_decoding_workers_share_the_cores(workers, cores, threads):
    assert pyav_threads_per_worker(workers, cores) == threads


def test_make_decoder_passes_the_thread_count(videos, tmp_path):
    assert make_decoder(videos / "alpha.mp4", "pyav", pyav_threads=3).threads == 3
    ffv1 = write_video(tmp_path / "v.mkv", codec="ffv1", pix_fmt="yuv420p", frames=2, width=32, height=32)
    assert make_decoder(ffv1, "auto", pyav_threads=2).threads == 2  # FFV1: PyAV even where DALI is


def test_rank_sharding_partitions_the_list(tmp_path, videos):
    listing = tmp_path / "list.txt"
    names = ["alpha.mp4", "beta.webm", "gamma.avi", "delta.mkv"]
    listing.write_text("# videos\n" + "\n".join(f"{videos}/{n}" for n in names) + "\n")
    out = tmp_path / "out"
    done = []
    for rank in range(2):
        summary = extract_features(ExtractConfig(videos=str(listing), out=str(out), rank=rank, world_size=2, fps=8,
                                                 clip_frames=8, size=32, workers=0, progress=False))
        done.append(set(summary.done))
        assert (out / f"manifest.rank{rank:05d}-of-00002.jsonl").exists()
    assert done[0] == {"alpha", "gamma"} and done[1] == {"beta", "delta"}


def test_duplicate_ids_are_refused(tmp_path, videos):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{videos}/alpha.mp4\n{videos}/gamma.avi\n{tmp_path}/alpha.mkv\n")
    with pytest.raises(ValueError, match="two videos share the id 'alpha'"):
        extract_features(ExtractConfig(videos=str(listing), out=str(tmp_path / "o"), progress=False))


def _model() -> S3D:
    torch.manual_seed(1)
    return S3D().eval()
