"""Clip sampling: resample a stream of timestamped frames to a fixed rate, group into clips.

Both decoding backends run these same functions over the same presentation timestamps, so they
agree on which source frame fills each output slot and on every clip's start and end.

Timing rules (all times in seconds, relative to the first frame's presentation time):
- output slot ``k`` is at ``k / fps``; it shows the latest source frame whose presentation time is
  ``<= k / fps`` (what a player would display then). Variable frame rate needs nothing special.
- the video ends where its last frame stops being displayed: the last frame's time plus the mean
  inter-frame interval (``1 / fps`` for a one-frame video).
- clips are ``clip_frames`` consecutive slots, non-overlapping: clip ``i`` starts at
  ``i * clip_frames / fps``.
- the last, partial clip follows ``partial``: ``"pad"`` (the default) repeats its last frame up to
  ``clip_frames`` and sets ``end`` to where the real frames stop, so no second of video is lost and
  a video shorter than one clip still gives one clip; ``"drop"`` discards it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")

# Timestamps come from rational time bases; a frame exactly on a slot must count as "at" it.
_EPS = 1e-6
# The estimated end may overshoot by a time-base rounding (1 ms in WebM): no slot for that sliver.
_END_EPS = 1e-3
PARTIAL_POLICIES = ("pad", "drop")


@dataclass(frozen=True)
class ClipSpec:
    """What a clip is: ``fps`` (frames/s after resampling), ``clip_frames`` (frames per clip),
    ``size`` (square side in pixels) and the ``partial`` last-clip policy."""

    fps: float = 20.0
    clip_frames: int = 30
    size: int = 224
    partial: str = "pad"

    def __post_init__(self):
        if self.fps <= 0 or self.clip_frames < 1 or self.size < 8:
            raise ValueError(f"invalid clip spec {self}: need fps > 0, clip_frames >= 1, size >= 8")
        if self.partial not in PARTIAL_POLICIES:
            raise ValueError(f"partial must be one of {PARTIAL_POLICIES}, got {self.partial!r}")

    @property
    def clip_seconds(self) -> float:
        return self.clip_frames / self.fps

    @property
    def resize_size(self) -> int:
        """Side of the square the frame is resized to before the centre crop: 256 for 224, as
        torchvision's S3D transform (resize 256 x 256, crop 224), with an even margin."""
        return self.size + 2 * round(self.size * 16 / 224)


class TimestampResampler(Generic[T]):
    """Feed frames in decode order with :meth:`push`; each call returns the items that fill the
    output slots now known to be complete; :meth:`finish` returns the rest."""

    def __init__(self, fps: float):
        self.fps = fps
        self._first: float | None = None
        self._prev: tuple[float, T] | None = None
        self._slot = 0
        self._frames_shown = 1  # distinct presentation times pushed so far
        self.frames_seen = 0

    def _slot_time(self) -> float:
        return self._slot / self.fps

    def push(self, time: float | None, item: T) -> list[T]:
        """``time``: the frame's presentation time in seconds (None if unknown: one interval
        after the previous frame)."""
        self.frames_seen += 1
        if time is None:
            time = 0.0 if self._prev is None else self._first + self._prev[0] + self._mean_interval()
        if self._first is None:
            self._first = time
        t = time - self._first
        out: list[T] = []
        if self._prev is not None:
            prev_t, prev_item = self._prev
            if t < prev_t:
                return out  # out-of-order timestamp (broken stream): the frame is not shown
            if t > prev_t:
                self._frames_shown += 1
                while self._slot_time() < t - _EPS:
                    out.append(prev_item)
                    self._slot += 1
        self._prev = (t, item)
        return out

    def _mean_interval(self) -> float:
        # The mean, not the last interval: exact for constant rates, and immune to timestamps
        # rounded to a coarse time base (WebM's milliseconds give 33, 34, 33, ... ms at 30 fps).
        if self._prev is None or self._frames_shown < 2:
            return 1 / self.fps
        return self._prev[0] / (self._frames_shown - 1)

    @property
    def end_seconds(self) -> float:
        """Where the frames pushed so far stop being displayed (0 before any frame)."""
        if self._prev is None:
            return 0.0
        return self._prev[0] + self._mean_interval()

    @property
    def first_time(self) -> float | None:
        """Presentation time (s, absolute) of the first frame: the origin of every clip time."""
        return self._first

    def finish(self) -> list[T]:
        out: list[T] = []
        if self._prev is None:
            return out
        end = self.end_seconds
        while self._slot_time() < end - _END_EPS:
            out.append(self._prev[1])
            self._slot += 1
        return out


def group_into_clips(frames: Iterable[T], spec: ClipSpec) -> Iterator[tuple[list[T], float, float]]:
    """Group resampled frames into ``(frames, start_s, end_s)`` clips of ``spec.clip_frames``."""
    buffer: list[T] = []
    index = 0
    for frame in frames:
        buffer.append(frame)
        if len(buffer) == spec.clip_frames:
            start = index * spec.clip_seconds
            yield buffer, start, start + spec.clip_seconds
            buffer, index = [], index + 1
    if buffer and spec.partial == "pad":
        start = index * spec.clip_seconds
        end = start + len(buffer) / spec.fps
        yield buffer + [buffer[-1]] * (spec.clip_frames - len(buffer)), start, end

