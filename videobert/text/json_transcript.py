"""JSON transcripts, cue-level or word-level, as ASR services and Whisper write them.

Accepted shapes (times in seconds):

- cue-level: ``[{"start": 0.0, "end": 1.5, "text": "..."}, ...]``, or that list under
  ``"segments"`` or ``"cues"``; a cue may carry its own ``"words"`` (Whisper's word timestamps);
- word-level: ``[{"start": 0.0, "end": 0.3, "word": "..."}, ...]``, or that list under ``"words"``;
  each word becomes a one-word cue.

Syntax errors name the line; errors in the content name the JSON path (``segments[3].start``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from videobert.text.cues import Cue, TranscriptError, Word, check_span, clean_text


def _time(item: dict, key: str, source: str, path: str) -> float:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TranscriptError(source, f"{path}.{key}", f"expected a number of seconds, got {value!r}")
    return float(value)


def _text(item: dict, source: str, path: str) -> tuple[str, str]:
    for key in ("text", "word"):
        if key in item:
            if not isinstance(item[key], str):
                raise TranscriptError(source, f"{path}.{key}", f"expected a string, got {item[key]!r}")
            return key, item[key]
    raise TranscriptError(source, path, "expected a 'text' (cue) or 'word' (word-level) field")


def _items(data: Any, source: str) -> tuple[list, str]:
    if isinstance(data, list):
        return data, ""
    if isinstance(data, dict):
        for key in ("segments", "cues", "words"):
            if isinstance(data.get(key), list):
                return data[key], key
    raise TranscriptError(source, None, "expected a list of cues or words, or an object with 'segments', 'cues' or 'words'")


def _cue(item: Any, source: str, path: str) -> Cue:
    if not isinstance(item, dict):
        raise TranscriptError(source, path, f"expected an object, got {type(item).__name__}")
    start, end = _time(item, "start", source, path), _time(item, "end", source, path)
    check_span(start, end, source, path)
    _, text = _text(item, source, path)
    words = []
    for k, word in enumerate(item.get("words") or []):
        word_cue = _cue(word, source, f"{path}.words[{k}]")
        words.append(Word(word_cue.start, word_cue.end, word_cue.text))
    text = clean_text(text) or " ".join(w.text for w in words)
    return Cue(start, end, text, tuple(w for w in words if w.text))


def parse_json(text: str, source: str) -> list[Cue]:
    """JSON text -> cues in file order (one per word for word-level input)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TranscriptError(source, exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})") from exc
    items, key = _items(data, source)
    return [_cue(item, source, f"{key}[{i}]") for i, item in enumerate(items)]
