"""``read_transcript(path)``: any supported transcript file -> tidy timed cues.

The format comes from the extension (``.vtt``, ``.srt``, ``.json``) and is checked against the
content: a WebVTT file starts with ``WEBVTT``, a JSON file starts with ``[`` or ``{``, an SRT file
does neither. Files are UTF-8; a byte-order mark is removed and CRLF / CR line ends become LF.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from videobert.text.cues import Cue, TranscriptError, tidy_cues
from videobert.text.json_transcript import parse_json
from videobert.text.srt import parse_srt
from videobert.text.webvtt import parse_webvtt

PARSERS: dict[str, Callable[[str, str], list[Cue]]] = {"vtt": parse_webvtt, "srt": parse_srt, "json": parse_json}
TRANSCRIPT_EXTENSIONS = tuple(f".{name}" for name in PARSERS)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 bytes -> text without BOM, with ``\\n`` line ends; bad bytes are an error naming the line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TranscriptError(source, line, f"not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def sniff_format(text: str) -> str:
    """The format the content looks like: ``vtt``, ``json`` or ``srt``."""
    head = text.lstrip()
    if head.startswith("WEBVTT"):
        return "vtt"
    if head[:1] in "[{" and head:
        return "json"
    return "srt"


def read_transcript(path: str | os.PathLike, duration: float | None = None, format: str | None = None) -> list[Cue]:
    """Read a WebVTT / SRT / JSON transcript into cues sorted by time (see ``videobert.text.cues``
    for how overlaps, empty and unsorted cues are handled).

    ``duration``: the video's length in seconds; cues past it are dropped or clipped.
    ``format``: ``vtt``, ``srt`` or ``json`` to override the extension.
    Raises ``TranscriptError`` naming the file and line for malformed input.
    """
    path = Path(path)
    source = str(path)
    text = decode_text(path.read_bytes(), source)
    declared = (format or path.suffix.lstrip(".")).lower()
    content = sniff_format(text)
    if declared not in PARSERS:
        declared = content
    elif declared != content != "srt":  # SRT is what is left when nothing else matched: the parser says what is wrong
        raise TranscriptError(source, 1, f"the {declared!r} file's content looks like {content!r}")
    return tidy_cues(PARSERS[declared](text, source), duration)
