"""Bad input: each failure has its own exception naming the file; truncation warns with counts."""

import warnings

import pytest

from videobert.video import (CorruptVideoError, EmptyVideoFileError, NoVideoStreamError, TruncatedVideoWarning,
                             VideoError, VideoNotFoundError, read_clips)
from videobert.video.synthetic import write_audio_only, write_video

BACKENDS = ["pyav", "dali-cpu"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_file(tmp_path, backend):
    with pytest.raises(VideoNotFoundError, match="nope.webm: no such file"):
        list(read_clips(tmp_path / "nope.webm", backend=backend))
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for generic handlers
        list(read_clips(tmp_path / "nope.webm", backend=backend))
    with pytest.raises(VideoNotFoundError, match="not a regular file"):
        list(read_clips(tmp_path, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_bytes(tmp_path, backend):
    (tmp_path / "empty.webm").write_bytes(b"")
    with pytest.raises(EmptyVideoFileError, match=r"empty.webm: file is empty \(0 bytes\)"):
        list(read_clips(tmp_path / "empty.webm", backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_garbage_is_corrupt(tmp_path, backend):
    import numpy as np

    path = tmp_path / "garbage.webm"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptVideoError, match="garbage.webm"):
        list(read_clips(path, backend=backend))


def test_header_with_garbage_stream_is_corrupt(tmp_path):
    good = write_video(tmp_path / "good.avi", codec="mjpeg", frames=10, width=64, height=48)
    data = bytearray(open(good, "rb").read())
    data[400:] = bytes(len(data) - 400)  # keep the AVI header, zero every frame
    (tmp_path / "zeroed.avi").write_bytes(bytes(data))
    with pytest.raises(VideoError, match="zeroed.avi"):
        list(read_clips(tmp_path / "zeroed.avi", size=32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_audio_only(tmp_path, backend):
    path = write_audio_only(tmp_path / "speech.m4a")
    with pytest.raises(NoVideoStreamError, match=r"speech.m4a: no video stream \(audio only\)"):
        list(read_clips(path, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_file_yields_what_decodes_then_warns(tmp_path, backend):
    path = write_video(tmp_path / "long.webm", codec="libvpx-vp9", fps=30, frames=150, width=64, height=48)
    data = open(path, "rb").read()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips = list(read_clips(cut, size=32, backend=backend))
    truncations = [w.message for w in caught if isinstance(w.message, TruncatedVideoWarning)]
    assert len(truncations) == 1
    warning = truncations[0]
    assert 1 <= len(clips) < 4 and warning.clips == len(clips)
    assert warning.expected_seconds == pytest.approx(5.0, abs=0.05)
    assert 1.0 < warning.decoded_seconds < 4.0
    assert "cut.webm: truncated" in str(warning)


def test_mp4_cut_before_its_index_is_corrupt(tmp_path):
    path = write_video(tmp_path / "v.mp4", frames=60, width=64, height=48)  # index (moov) at the end
    data = open(path, "rb").read()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(CorruptVideoError, match="cut.mp4"):
        list(read_clips(tmp_path / "cut.mp4", size=32))


def test_complete_file_does_not_warn(tmp_path):
    path = write_video(tmp_path / "ok.mkv", frames=45, width=64, height=48)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedVideoWarning)
        assert len(list(read_clips(path, size=32))) == 1
