"""Timestamp resampling and clip grouping, on timestamp lists (no decoding)."""

from fractions import Fraction

import pytest

from videobert.video.sampling import ClipSpec, TimestampResampler, group_into_clips


def resample(times, fps=20.0):
    r = TimestampResampler(fps)
    out = [i for index, t in enumerate(times) for i in r.push(t, index)]
    return out + r.finish(), r


def expected_indices(times, fps, end):
    """Independent statement of the rule: slot k shows the last frame with time <= k / fps."""
    out, k = [], 0
    while k / fps < end - 1e-3:
        out.append(max(i for i, t in enumerate(times) if t <= k / fps + 1e-6))
        k += 1
    return out


@pytest.mark.parametrize("source_fps", [24, 25, Fraction(30000, 1001), 30, 60, 10])
def test_constant_rate_sources_resample_by_time(source_fps):
    n = 95
    times = [float(i / Fraction(source_fps)) for i in range(n)]
    got, r = resample(times)
    duration = n / float(source_fps)
    assert r.end_seconds == pytest.approx(duration)
    assert got == expected_indices(times, 20.0, duration)
    assert len(got) == pytest.approx(duration * 20, abs=1)


def test_variable_frame_rate_and_offset_start():
    times = [3.0, 3.1, 3.15, 3.5, 3.55, 4.0, 4.9]  # the first frame is time 0 of the clips
    got, r = resample(times, fps=10)
    assert r.first_time == 3.0
    rel = [t - 3.0 for t in times]
    assert got == expected_indices(rel, 10, r.end_seconds)
    assert got[:7] == [0, 1, 2, 2, 2, 3, 4]


def test_out_of_order_and_unknown_times():
    got, _ = resample([0.0, 0.1, 0.05, 0.2], fps=10)  # 0.05 arrives late: never shown
    assert got == [0, 1, 3]  # mean interval 0.1 s: the video ends at 0.3 s
    r = TimestampResampler(10.0)
    shown = r.push(0.0, "a") + r.push(None, "b") + r.push(None, "c") + r.finish()
    assert shown == ["a", "b", "c"]


def test_webm_millisecond_rounding_does_not_add_a_slot():
    times = [round(i / 30, 3) for i in range(60)]  # 2 s at 30 fps on a 1 ms time base
    got, _ = resample(times)
    assert len(got) == 40


def test_grouping_pads_or_drops_the_partial_clip():
    spec = ClipSpec(fps=10, clip_frames=4)
    clips = list(group_into_clips(range(10), spec))
    assert [(c, s, e) for c, s, e in clips] == [([0, 1, 2, 3], 0.0, 0.4), ([4, 5, 6, 7], 0.4, 0.8),
                                                ([8, 9, 9, 9], 0.8, pytest.approx(1.0))]
    dropped = list(group_into_clips(range(10), ClipSpec(fps=10, clip_frames=4, partial="drop")))
    assert len(dropped) == 2
    assert list(group_into_clips(range(2), ClipSpec(fps=10, clip_frames=4, partial="drop"))) == []


def test_spec_validation_and_resize_geometry():
    assert ClipSpec(size=224).resize_size == 256
    assert ClipSpec(size=112).resize_size == 128
    assert (ClipSpec(size=160).resize_size - 160) % 2 == 0
    with pytest.raises(ValueError, match="partial"):
        ClipSpec(partial="keep")
    with pytest.raises(ValueError):
        ClipSpec(fps=0)
