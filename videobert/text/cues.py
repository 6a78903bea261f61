"""Timed cues and words, the error every transcript reader raises, and the tidying every reader shares.

Recoverable oddities are handled here, once, for all formats (see ``tidy_cues``):

- empty cues (no text after removing markup) are dropped;
- unsorted cues are sorted by start time (stable, so equal starts keep file order);
- overlapping cues: a cue's end is clipped to the next cue's start, so that time only moves forward
  through the transcript (word times inside the cue are clipped with it);
- times past the video's end: with ``duration`` given, cues starting at or after it are dropped and
  ends are clipped to it.
"""

from __future__ import annotations

import dataclasses
import html
import re
from dataclasses import dataclass

_TIMESTAMP = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?$")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # HTML-like tags, and SSA override codes like {\an8} in SRT
_SPACES = re.compile(r"\s+")


class TranscriptError(ValueError):
    """A transcript that cannot be read; the message names the file and the line (or JSON path)."""

    def __init__(self, source: str, where: int | str | None, message: str):
        self.source, self.where = source, where
        location = f"{source}:{where}" if isinstance(where, int) else f"{source} ({where})" if where else source
        super().__init__(f"{location}: {message}")


@dataclass(frozen=True)
class Word:
    """One word and its time span in seconds."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Cue:
    """A timed piece of transcript: ``start`` / ``end`` in seconds, its ``text``, and, where the
    format carries them (YouTube auto-captions, word-level JSON), the ``words`` with their own times."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


def parse_timestamp(value: str, source: str, line: int | str | None) -> float:
    """``[hh:]mm:ss[.mmm]`` (``,`` accepted for SRT) -> seconds."""
    match = _TIMESTAMP.match(value.strip())
    if not match:
        raise TranscriptError(source, line, f"bad timestamp {value.strip()!r}, expected [hh:]mm:ss.mmm")
    hours, minutes, seconds, fraction = match.groups()
    if int(minutes) >= 60 or int(seconds) >= 60:
        raise TranscriptError(source, line, f"bad timestamp {value.strip()!r}: minutes and seconds must be < 60")
    frac = int(fraction) / 10 ** len(fraction) if fraction else 0.0
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + frac


def clean_text(text: str) -> str:
    """Markup removed, HTML entities decoded, whitespace collapsed."""
    return _SPACES.sub(" ", html.unescape(_TAG.sub("", text))).strip()


def check_span(start: float, end: float, source: str, where: int | str | None) -> None:
    if start < 0:
        raise TranscriptError(source, where, f"negative start time {start}")
    if end < start:
        raise TranscriptError(source, where, f"end {end} s is before start {start} s")


def _clip(cue: Cue, end: float) -> Cue:
    """``cue`` with its end (and its words' times) clipped to ``end``."""
    end = max(cue.start, min(cue.end, end))
    words = tuple(
        dataclasses.replace(w, start=min(max(w.start, cue.start), end), end=min(max(w.end, cue.start), end))
        for w in cue.words
    )
    return dataclasses.replace(cue, end=end, words=words)


def tidy_cues(cues: list[Cue], duration: float | None = None) -> list[Cue]:
    """Drop empty cues, sort, clip overlaps and (with ``duration`` in seconds) times past the end."""
    cues = sorted((c for c in cues if c.text), key=lambda c: c.start)
    if duration is not None:
        cues = [_clip(c, duration) for c in cues if c.start < duration]
    tidy = []
    for i, cue in enumerate(cues):
        next_start = cues[i + 1].start if i + 1 < len(cues) else cue.end
        tidy.append(_clip(cue, next_start) if cue.end > next_start or cue.words else cue)
    return tidy
