"""The DALI backend (CPU: VP8/VP9/MJPEG) agrees with PyAV: same clips and times, frames close.

Tolerance (uint8 levels of 255, measured 0.3 mean / 3-6 p99 / 15-21 max): mean <= 1 and 99th
percentile <= 8. The backends take different routes (PyAV: the YUV planes resized, then converted
to RGB; DALI: converted to RGB, then resized) and resize with different kernels;
the largest differences sit on the sharp white/colour edge of the synthetic frames. (With swscale's
RGB conversion, which truncates, PyAV read ~2 levels away on average, p99 11-15.)
"""

from fractions import Fraction

import numpy as np
import pytest

from videobert.video import UnsupportedCodecError, read_clips, read_raw_clips
from videobert.video.sampling import ClipSpec
from videobert.video.synthetic import write_video

MEAN_LEVELS, P99_LEVELS = 1.0, 8.0


@pytest.mark.parametrize("codec,suffix,fps", [("libvpx-vp9", ".webm", 30), ("libvpx-vp9", ".webm", Fraction(30000, 1001)),
                                              ("libvpx", ".webm", 25), ("mjpeg", ".avi", 24)])
def test_backends_agree(tmp_path, codec, suffix, fps):
    path = write_video(tmp_path / f"v{suffix}", codec=codec, fps=fps, frames=50, width=80, height=60)
    spec = ClipSpec(fps=20, clip_frames=16, size=48)
    pyav = list(read_raw_clips(path, spec, backend="pyav"))
    dali = list(read_raw_clips(path, spec, backend="dali-cpu"))
    assert [(c.start, c.end) for c in dali] == [(c.start, c.end) for c in pyav]
    a = np.stack([c.frames for c in pyav]).astype(np.int16)
    b = np.stack([c.frames for c in dali]).astype(np.int16)
    diff = np.abs(a - b)
    assert diff.mean() <= MEAN_LEVELS and np.percentile(diff, 99) <= P99_LEVELS


def test_dali_variable_frame_rate_and_normalised_output(tmp_path):
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 1.0, 1.2, 1.9]
    path = write_video(tmp_path / "vfr.webm", codec="libvpx-vp9", times=times, width=64, height=48)
    pyav = list(read_clips(path, fps=10, clip_frames=5, size=32, backend="pyav"))
    dali = list(read_clips(path, fps=10, clip_frames=5, size=32, backend="dali-cpu"))
    assert [(c.start, c.end) for c in dali] == [(c.start, c.end) for c in pyav]
    for x, y in zip(pyav, dali):
        assert y.frames.shape == (3, 5, 32, 32)
        assert (x.frames - y.frames).abs().mean() < 0.1  # normalised units (~4 levels / 255 / std)


def test_dali_cpu_refuses_h264_clearly(tmp_path):
    path = write_video(tmp_path / "v.mp4", codec="libx264", frames=10, width=64, height=48)
    with pytest.raises(UnsupportedCodecError, match="v.mp4: DALI on CPU cannot decode h264"):
        list(read_clips(path, backend="dali-cpu"))


def test_unknown_backend(tmp_path):
    with pytest.raises(ValueError, match="unknown video backend"):
        list(read_clips(tmp_path / "x.mp4", backend="opencv"))
