"""read_clips on real files written with PyAV: codecs, frame rates, VFR, rotation, sizes."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from videobert.video import S3D_MEAN, S3D_STD, normalize_clips, read_clips, read_raw_clips
from videobert.video.sampling import ClipSpec
from videobert.video.synthetic import CODECS, write_video


def shown_levels(raw_frames):
    """Which synthetic level each frame shows (green channel, centre right, away from the band)."""
    return [int(f[f.shape[0] // 2, -2, 1]) for f in raw_frames]


def nearest_frame_index(level):
    return (level - 10 + 10) // 20  # levels are 20 * (i % 12) + 10


def expected_slots(times, fps, end):
    out, k = [], 0
    while k / fps < end - 1e-3:
        out.append(max(i for i, t in enumerate(times) if t <= k / fps + 1e-6))
        k += 1
    return out


@pytest.mark.parametrize("codec", list(CODECS))
def test_codecs_give_normalised_clips_with_times(tmp_path, codec):
    path = write_video(tmp_path / f"v{CODECS[codec][1]}", codec=codec, fps=30, frames=60, width=80, height=48)
    clips = list(read_clips(path, size=32, backend="pyav"))
    assert [(c.start, c.end) for c in clips] == [(0.0, 1.5), (1.5, pytest.approx(2.0))]
    frames = clips[0].frames
    assert frames.shape == (3, 30, 32, 32) and frames.dtype == torch.float32
    # the white band (top-left after the crop) is (1 - mean) / std after normalisation
    white = (1 - torch.tensor(S3D_MEAN)) / torch.tensor(S3D_STD)
    assert torch.allclose(frames[:, 0, 16, 0], white, atol=0.15)


@pytest.mark.parametrize("codec,pix_fmt", [("libx264", "yuv444p"), ("libx264", "yuv422p"), ("libx264", "yuv420p10le"),
                                           ("ffv1", "gray"), ("ffv1", "bgr0")])
def test_pixel_formats_give_the_same_picture(tmp_path, codec, pix_fmt):
    """8-bit planar YUV goes through the frame_resize kernel, other formats (10-bit, grey, RGB)
    through swscale's RGB and PyTorch's resize: both give the picture the 4:2:0 file gives."""
    spec = ClipSpec(fps=20, clip_frames=4, size=32)
    reference = next(read_raw_clips(write_video(tmp_path / "v.mp4", frames=6, width=80, height=48), spec)).frames
    path = write_video(tmp_path / f"v.{pix_fmt}.mkv", codec=codec, pix_fmt=pix_fmt, frames=6, width=80, height=48)
    frames = next(read_raw_clips(path, spec, backend="pyav")).frames
    assert frames.shape == reference.shape and frames.dtype == np.uint8
    if pix_fmt == "gray":  # luma only: compare with the reference's luma
        frames, reference = frames[..., 0], np.asarray(reference @ np.array([0.299, 0.587, 0.114])).round()
    diff = np.abs(frames.astype(np.int16) - reference.astype(np.int16))
    assert diff.mean() < 2.5 and np.percentile(diff, 99) <= 12


@pytest.mark.parametrize("codec,pix_fmt", [("libx264", "yuv420p"), ("ffv1", "bgr0")])
def test_read_clips_is_normalize_clips_of_read_raw_clips(tmp_path, codec, pix_fmt):
    """read_clips normalises while converting (the kernel route) or after (the swscale route);
    either way it gives normalize_clips of the uint8 clips, in S3D's fast channels-last layout."""
    path = write_video(tmp_path / "v.mkv", codec=codec, pix_fmt=pix_fmt, frames=40, width=80, height=48)
    raw = list(read_raw_clips(path, ClipSpec(fps=20, clip_frames=8, size=32), backend="pyav"))
    clips = list(read_clips(path, fps=20, clip_frames=8, size=32, backend="pyav"))
    assert [(c.start, c.end) for c in clips] == [(c.start, c.end) for c in raw]
    for clip, uint8 in zip(clips, raw):
        assert clip.frames.shape == (3, 8, 32, 32) and clip.frames.movedim(0, -1).is_contiguous()  # [T, H, W, 3] in memory
        torch.testing.assert_close(clip.frames, normalize_clips(torch.from_numpy(uint8.frames)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fps", [24, 25, Fraction(30000, 1001), 60])
def test_frame_rates_pick_the_frame_shown_at_each_slot(tmp_path, fps):
    n = 36
    path = write_video(tmp_path / "v.mp4", fps=fps, frames=n, width=64, height=48)
    raw = list(read_raw_clips(path, ClipSpec(fps=20, clip_frames=8, size=32), backend="pyav"))
    times = [float(i / Fraction(fps)) for i in range(n)]
    slots = expected_slots(times, 20, n / float(Fraction(fps)))
    got = [nearest_frame_index(level) for clip in raw for level in shown_levels(clip.frames)][: len(slots)]
    assert got == [i % 12 for i in slots]
    assert len(raw) == -(-len(slots) // 8)


def test_variable_frame_rate(tmp_path):
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 1.0, 1.2, 1.9]
    path = write_video(tmp_path / "vfr.mp4", times=times, width=64, height=48)
    raw = list(read_raw_clips(path, ClipSpec(fps=10, clip_frames=5, size=32), backend="pyav"))
    end = 1.9 + 1.9 / 7
    slots = expected_slots(times, 10, end)
    got = [nearest_frame_index(level) for clip in raw for level in shown_levels(clip.frames)][: len(slots)]
    assert got == slots
    assert raw[-1].end == pytest.approx(len(slots) / 10)


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    path = write_video(tmp_path / "rot.mp4", rotation=rotation, frames=4, width=64, height=64)
    frame = next(read_raw_clips(path, ClipSpec(fps=20, clip_frames=2, size=32), backend="pyav")).frames[0]
    band = frame.mean(axis=2) > 245  # the band sits on the left edge of the unrotated frame
    edges = {"left": band[:, 0].mean(), "right": band[:, -1].mean(), "top": band[0].mean(), "bottom": band[-1].mean()}
    # counter-clockwise by 90 takes the left edge to the bottom
    expected = {90: "bottom", -90: "top", 180: "right"}[rotation]
    assert max(edges, key=edges.get) == expected and edges[expected] > 0.9


def test_short_video_follows_partial_policy(tmp_path):
    path = write_video(tmp_path / "short.mp4", fps=30, frames=9, width=64, height=48)  # 0.3 s
    (clip,) = list(read_clips(path, size=32))
    assert clip.frames.shape == (3, 30, 32, 32) and (clip.start, clip.end) == (0.0, pytest.approx(0.3))
    assert torch.equal(clip.frames[:, 6], clip.frames[:, -1])  # padded with the last real frame
    assert list(read_clips(path, size=32, partial="drop")) == []


def test_size_and_clip_length_options(tmp_path):
    path = write_video(tmp_path / "v.webm", codec="libvpx-vp9", fps=25, frames=25, width=120, height=90)
    clips = list(read_clips(path, fps=10, clip_frames=4, size=48))
    assert [c.frames.shape for c in clips] == [(3, 4, 48, 48)] * 3
    assert np.allclose([c.start for c in clips], [0.0, 0.4, 0.8]) and clips[-1].end == pytest.approx(1.0)


def test_audio_track_is_ignored(tmp_path):
    path = write_video(tmp_path / "av.mp4", frames=30, width=64, height=48, audio=True)
    assert [(c.start, c.end) for c in read_clips(path, size=32)] == [(0.0, pytest.approx(1.0))]


def test_normalize_clips_matches_the_formula_on_any_leading_shape():
    frames = torch.randint(0, 256, (2, 4, 5, 6, 3), dtype=torch.uint8)
    mean, std = torch.tensor(S3D_MEAN), torch.tensor(S3D_STD)
    expected = ((frames.float() / 255 - mean) / std).movedim(-1, -4)
    out = normalize_clips(frames)
    assert out.shape == (2, 3, 4, 5, 6) and out.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert normalize_clips(frames, torch.bfloat16).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="expected uint8 frames"):
        normalize_clips(frames.float())


def test_decoding_threads_follow_the_frame_size_and_never_change_the_clips(tmp_path):
    """Large frames decode on every core, smaller ones leave a core to the conversion thread; an
    explicit count is kept. Whatever the count, the clips are the same."""
    from videobert.video.pyav_backend import PyAVDecoder, default_threads
    from videobert.video.types import DecodeReport

    assert [default_threads(1280, 720, 2), default_threads(960, 540, 2), default_threads(640, 360, 2)] == [2, 2, 1]
    assert [default_threads(640, 272, 1), default_threads(1920, 1080, 16), default_threads(640, 272, 16)] == [1, 16, 15]
    assert PyAVDecoder().threads is None and PyAVDecoder(3).threads == 3
    path = write_video(tmp_path / "large.mp4", "libx264", fps=20, frames=40, width=960, height=544, textured=True)
    spec = ClipSpec(fps=20, clip_frames=10, size=64)
    clips = {threads: np.stack([c.frames for c in PyAVDecoder(threads).raw_clips(path, spec, DecodeReport())])
             for threads in (None, 1, 2)}
    assert clips[None].shape == (4, 10, 64, 64, 3)
    np.testing.assert_array_equal(clips[None], clips[1])
    np.testing.assert_array_equal(clips[None], clips[2])
