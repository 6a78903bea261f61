"""SubRip (SRT): numbered blocks ``index / hh:mm:ss,mmm --> hh:mm:ss,mmm / text lines``.

Lenient where files in the wild differ and nothing is ambiguous: the index line may be missing,
``.`` is accepted for ``,`` in times, lines holding only spaces separate blocks, markup such as
``<i>`` and ``{\\an8}`` is removed, and coordinates after the end time (``X1:...``) are ignored.
"""

from __future__ import annotations

from videobert.text.cues import Cue, TranscriptError, check_span, clean_text, parse_timestamp


def parse_srt(text: str, source: str) -> list[Cue]:
    """SRT text (BOM and CR already removed) -> cues in file order."""
    cues: list[Cue] = []
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n") + [""], start=1):
        if line.strip():
            block.append((number, line))
            continue
        if not block:
            continue
        first_number, first = block[0]
        if "-->" in first:
            timing_at = 0
        elif first.strip().isdigit() and len(block) > 1 and "-->" in block[1][1]:
            timing_at = 1
        elif first.strip().isdigit():
            raise TranscriptError(source, first_number + 1, f"cue {first.strip()} has no timing line 'start --> end'")
        else:
            raise TranscriptError(source, first_number, f"expected a cue number or a timing line, got {first.strip()!r}")
        number, timing = block[timing_at]
        left, _, right = timing.partition("-->")
        if not right.strip():
            raise TranscriptError(source, number, "cue timing line has no end time")
        start = parse_timestamp(left, source, number)
        end = parse_timestamp(right.split()[0], source, number)
        check_span(start, end, source, number)
        cues.append(Cue(start, end, clean_text(" ".join(line for _, line in block[timing_at + 1 :]))))
        block = []
    return cues
