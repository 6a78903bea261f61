"""WebVTT, including YouTube auto-captions.

A YouTube auto-caption file "rolls": each cue shows the previous line again above the new one, the
new line carries word timings (``word<00:00:01.234><c> next</c>``), and 10 ms cues in between show
only the repeated line. Reading it naively repeats every sentence two or three times. A file rolls
when it has inline word timings, or when most cues begin with the previous cue's last line; its
cues then keep only their new lines (lines with word timings, or lines the previous cue did not
show), and cues with nothing new are dropped.

An inline timing marks when a word *starts*; when it ends is not written. Taking the next word's
start as its end would hide every pause inside the ASR stream (the last word of a line would last
until the next line, seconds later), and an unpunctuated track would become one sentence. So a
word is given at most the time it takes to say (``spoken_seconds``), and the rest is silence that
``split_sentences`` can cut at.

Blocks are separated by empty lines as the WebVTT spec says (a line holding only spaces is cue
text: YouTube uses one as a blank first line). ``NOTE``, ``STYLE`` and ``REGION`` blocks are skipped.
"""

from __future__ import annotations

import re

from videobert.text.cues import Cue, TranscriptError, Word, check_span, clean_text, parse_timestamp

_INLINE_TIME = re.compile(r"<(\d+:\d{2}(?::\d{2})?\.\d{3})>")
# Generous bounds on how long a word takes to say: normal speech runs at about 12-15 characters a
# second, so a word's time rarely exceeds this; anything beyond it counts as a pause.
WORD_SECONDS = 0.15
SECONDS_PER_CHARACTER = 0.07


def spoken_seconds(text: str) -> float:
    """An upper estimate of how long ``text`` (one or more words) takes to say, in seconds."""
    return sum(WORD_SECONDS + SECONDS_PER_CHARACTER * len(word) for word in text.split())
_SKIPPED_BLOCKS = ("NOTE", "STYLE", "REGION")


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Groups of consecutive non-empty lines, each with the 1-based number of its first line."""
    blocks, current, first = [], [], 0
    for number, line in enumerate(lines, start=1):
        if line == "":
            if current:
                blocks.append((first, current))
            current = []
        else:
            if not current:
                first = number
            current.append(line)
    if current:
        blocks.append((first, current))
    return blocks


def _timed_words(line: str, start: float, end: float, source: str, number: int) -> list[Word]:
    """Words of a line with inline timings: text before the first timing starts at the cue's start;
    each timing starts the text after it; each piece ends where the next begins (the last at ``end``)
    or once it has been said (``spoken_seconds``), whichever is sooner."""
    pieces = _INLINE_TIME.split(line)  # [text, time, text, time, text, ...]
    times = [start] + [parse_timestamp(t, source, number) for t in pieces[1::2]]
    words = []
    for i, (text, t0) in enumerate(zip(pieces[0::2], times)):
        t1 = times[i + 1] if i + 1 < len(times) else end
        t0, t1 = min(max(t0, start), end), min(max(t1, start), end)
        t1 = min(t1, t0 + spoken_seconds(clean_text(text)))
        tokens = clean_text(text).split()
        for k, token in enumerate(tokens):  # several words between two timings share the piece evenly
            step = (t1 - t0) / len(tokens)
            words.append(Word(t0 + k * step, t0 + (k + 1) * step, token))
    return words


def _is_rolling(cue_lines: list[list[str]], has_inline_times: bool) -> bool:
    if has_inline_times:
        return True
    repeats = sum(1 for prev, cur in zip(cue_lines, cue_lines[1:]) if prev and cur and cur[0] == prev[-1])
    return len(cue_lines) > 1 and repeats >= 0.5 * (len(cue_lines) - 1)


def parse_webvtt(text: str, source: str) -> list[Cue]:
    """WebVTT text (BOM and CR already removed) -> cues, in file order, rolling repeats removed."""
    lines = text.split("\n")
    if not lines or not lines[0].startswith("WEBVTT"):
        raise TranscriptError(source, 1, "expected the 'WEBVTT' header on the first line")
    raw = []  # (line number, start, end, payload lines)
    for first, block in _blocks(lines)[1:]:  # the first block is the header
        if block[0].split(" ", 1)[0] in _SKIPPED_BLOCKS:
            continue
        timing_at = 0 if "-->" in block[0] else 1 if len(block) > 1 and "-->" in block[1] else None
        if timing_at is None:
            raise TranscriptError(source, first, f"expected a cue timing line 'start --> end', got {block[0]!r}")
        number = first + timing_at
        left, _, right = block[timing_at].partition("-->")
        if not right.strip():
            raise TranscriptError(source, number, "cue timing line has no end time")
        start = parse_timestamp(left, source, number)
        end = parse_timestamp(right.split()[0], source, number)
        check_span(start, end, source, number)
        raw.append((number, start, end, block[timing_at + 1 :]))

    has_inline_times = any(_INLINE_TIME.search(line) for *_, payload in raw for line in payload)
    plain = [[clean_text(line) for line in payload if clean_text(line)] for *_, payload in raw]
    rolling = _is_rolling(plain, has_inline_times)

    cues, previous = [], set()
    for (number, start, end, payload), shown in zip(raw, plain):
        words: list[Word] = []
        for offset, line in enumerate(payload, start=1):
            if _INLINE_TIME.search(line):
                words += _timed_words(line, start, end, source, number + offset)
            elif clean_text(line) and not (rolling and clean_text(line) in previous):
                # A line without word timings: spread the cue's time over its words later, in order.
                words += [Word(start, end, token) for token in clean_text(line).split()]
        if shown:
            previous = set(shown)
        if words:
            timed = any(w.start != start or w.end != end for w in words)
            cues.append(Cue(start, end, " ".join(w.text for w in words), tuple(words) if timed else ()))
    return cues
