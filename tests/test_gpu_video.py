"""GPU placement of decoding and extraction: the rank's own GPU (``LOCAL_RANK``) for the model and
DALI, the ``backend="auto"`` rule, and worker processes that never inherit a CUDA context by fork.

The rules are tested everywhere; the GPU runs (DALI on NVDEC, extraction on cuda with spawned
decoding workers) where a GPU is present.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videobert.features.extract import ExtractConfig, decoding_start_method, extract_features, extraction_device
from videobert.features.store import iter_video_features
from videobert.utils.dist import local_rank
from videobert.video import read_raw_clips
from videobert.video.reader import auto_uses_dali, make_decoder
from videobert.video.sampling import ClipSpec
from videobert.video.synthetic import write_video


def test_auto_uses_dali_only_on_a_gpu_for_nvdec_codecs():
    for codec in ("h264", "hevc", "vp9"):
        assert auto_uses_dali(codec, gpu=True) and not auto_uses_dali(codec, gpu=False)
    for codec in ("vp8", "mjpeg", "mpeg4", "av1", "theora"):
        assert not auto_uses_dali(codec, gpu=True)


def test_local_rank_names_the_gpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert local_rank() == 3
    assert extraction_device("cpu") == torch.device("cpu")
    assert extraction_device("cuda:1") == torch.device("cuda", 1)  # an explicit index wins
    if torch.cuda.device_count() <= 3:
        with pytest.raises(ValueError, match=r"LOCAL_RANK=3 asks for cuda:3, but \d CUDA device\(s\) are visible"):
            extraction_device("cuda")
    monkeypatch.setenv("LOCAL_RANK", "first")
    with pytest.raises(ValueError, match="LOCAL_RANK must be a non-negative integer, got 'first'"):
        local_rank()
    monkeypatch.delenv("LOCAL_RANK")
    assert local_rank() == 0


def test_dali_device_id_follows_local_rank(monkeypatch, tmp_path):
    pytest.importorskip("nvidia.dali")
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert make_decoder(tmp_path / "unopened.webm", "dali-cpu").device_id == 2
    assert make_decoder(tmp_path / "unopened.webm", "dali").device_id == 2


def test_workers_spawn_wherever_cuda_is_in_play():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert decoding_start_method(gpu, "pyav") == "spawn"  # the model's CUDA context must not be forked
    assert decoding_start_method(cpu, "pyav") == ("spawn" if torch.cuda.is_initialized() else None)
    if not torch.cuda.is_available():
        assert decoding_start_method(cpu, "dali") is None  # no GPU: DALI decodes on the CPU, fork is fine


@pytest.mark.gpu
def test_extraction_on_the_gpu_with_spawned_workers_matches_the_main_process(tmp_path):
    pytest.importorskip("av")
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(3):
        write_video(videos / f"v{i}.mp4", frames=50 + 10 * i, width=96, height=64, textured=True)
    features = {}
    for workers in (0, 2):
        out = tmp_path / f"out{workers}"
        summary = extract_features(ExtractConfig(videos=str(videos), out=str(out), size=112, batch_size=4,
                                                 workers=workers, device="cuda", progress=False))
        assert sorted(summary.done) == ["v0", "v1", "v2"] and not summary.failed
        features[workers] = {video: f for video, f, _ in iter_video_features(out)}
    for video, f in features[0].items():
        np.testing.assert_allclose(features[2][video], f, rtol=2e-2, atol=2e-2)  # bf16; batches differ


@pytest.mark.gpu
def test_auto_decodes_h264_with_dali_on_the_gpu_like_pyav(tmp_path):
    pytest.importorskip("nvidia.dali")
    path = write_video(tmp_path / "v.mp4", codec="libx264", frames=50, width=80, height=60)
    decoder = make_decoder(path, "auto")
    assert decoder.name == "dali" and decoder.device == "gpu"
    spec = ClipSpec(fps=20, clip_frames=16, size=48)
    pyav = list(read_raw_clips(path, spec, backend="pyav"))
    dali = list(read_raw_clips(path, spec, backend="auto"))
    assert [(c.start, c.end) for c in dali] == [(c.start, c.end) for c in pyav]
    diff = np.abs(np.stack([c.frames for c in pyav]).astype(np.int16) - np.stack([c.frames for c in dali]).astype(np.int16))
    assert diff.mean() <= 1.0 and np.percentile(diff, 99) <= 8.0  # the tolerance of tests/test_video_dali.py
