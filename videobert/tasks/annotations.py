"""YouCook II annotations, class vocabularies, and the verb / object of a sentence.

YouCook II's annotation file (``youcookii_annotations_trainval.json``) looks like::

    {"database": {"<video id>": {"subset": "validation", "duration": 241.62,
                                 "recipe_type": "113", "video_url": "...",
                                 "annotations": [{"id": 0, "segment": [90, 102],
                                                  "sentence": "spread margarine on two slices of white bread"}, ...]}}}

Ground truth for zero-shot classification: a segment's verb and object are taken from the
annotation's own ``"verb"`` / ``"object"`` keys when present, otherwise extracted from its sentence
with :func:`extract_verb_object` (vocabulary matching; no part-of-speech tagger is used).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Segment:
    """One annotated segment of a video. ``start`` / ``end`` in seconds."""

    video_id: str
    start: float
    end: float
    sentence: str
    subset: str = ""
    duration: float | None = None
    verb: str | None = None  # given ground truth, if the annotation carries it
    object: str | None = None


def read_youcook_annotations(path: str | os.PathLike, subset: str | None = None) -> list[Segment]:
    """Every annotated segment of a YouCook II-format file, in file order.

    ``subset`` (e.g. ``"validation"``) keeps only videos of that subset. Raises ``ValueError``
    naming the file, the video id and the annotation index for malformed entries.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise ValueError(f"{path}: expected a top-level 'database' mapping of video id -> video")
    segments = []
    for video_id, video in database.items():
        where = f"{path}: video {video_id!r}"
        if not isinstance(video, dict) or not isinstance(video.get("annotations"), list):
            raise ValueError(f"{where}: expected a mapping with an 'annotations' list")
        video_subset = str(video.get("subset", ""))
        if subset is not None and video_subset != subset:
            continue
        duration = video.get("duration")
        for index, ann in enumerate(video["annotations"]):
            try:
                start, end = (float(t) for t in ann["segment"])
                sentence = str(ann["sentence"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{where}, annotation {index}: expected 'segment' [start, end] seconds "
                                 f"and 'sentence', got {ann!r}") from exc
            if not 0 <= start <= end:
                raise ValueError(f"{where}, annotation {index}: segment [{start}, {end}] is not 0 <= start <= end")
            segments.append(Segment(video_id, start, end, sentence, video_subset,
                                    None if duration is None else float(duration), ann.get("verb"), ann.get("object")))
    return segments


def read_word_list(path: str | os.PathLike) -> list[str]:
    """A vocabulary file: one class per line (lower-cased; blank lines and ``#`` comments skipped;
    duplicates rejected, naming the line)."""
    words: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        word = " ".join(line.split("#", 1)[0].lower().split())
        if not word:
            continue
        if word in seen:
            raise ValueError(f"{path}:{number}: {word!r} already listed on line {seen[word]}")
        seen[word] = number
        words.append(word)
    if not words:
        raise ValueError(f"{path}: no words")
    return words


_TOKEN = re.compile(r"[a-z]+")


def _verb_forms(token: str) -> list[str]:
    """Candidate base forms of an inflected verb: chopped -> chop, slicing -> slice, adds -> add."""
    forms = [token]
    for suffix in ("ing", "ed"):
        if token.endswith(suffix) and len(token) > len(suffix) + 2:
            stem = token[: -len(suffix)]
            forms += [stem, stem + "e"]
            if len(stem) > 2 and stem[-1] == stem[-2]:
                forms.append(stem[:-1])  # chopp(ed) -> chop
    if token.endswith("ies"):
        forms.append(token[:-3] + "y")
    if token.endswith("es"):
        forms.append(token[:-2])
    if token.endswith("s") and not token.endswith("ss"):
        forms.append(token[:-1])
    return forms


def _noun_forms(token: str) -> list[str]:
    """Candidate singular forms: tomatoes -> tomato, berries -> berry, onions -> onion."""
    forms = [token]
    if token.endswith("ies"):
        forms.append(token[:-3] + "y")
    if token.endswith("es"):
        forms.append(token[:-2])
    if token.endswith("s") and not token.endswith("ss"):
        forms.append(token[:-1])
    return forms


def _match_at(tokens: list[str], i: int, vocab: set[str], max_words: int, forms) -> tuple[str, int] | None:
    """The longest vocabulary entry starting at token ``i`` (its last word may be inflected)."""
    for n in range(min(max_words, len(tokens) - i), 0, -1):
        head = tokens[i : i + n - 1]
        for form in forms(tokens[i + n - 1]):
            phrase = " ".join(head + [form])
            if phrase in vocab:
                return phrase, n
    return None


def extract_verb_object(sentence: str, verbs: list[str], objects: list[str]) -> tuple[str | None, str | None]:
    """The sentence's action verb and its object, as entries of the given vocabularies.

    How: the sentence is lower-cased and split into letter runs; the verb is the first token whose
    base form (stripping -ing / -ed / -s, undoubling a final consonant) is in ``verbs``; the object
    is the first entry of ``objects`` (multi-word entries such as ``"olive oil"`` allowed, plural
    last word accepted) that starts after the verb, or anywhere if none follows it. YouCook II
    sentences are imperative ("cut the tomatoes into slices"), so the first verb is the action.
    Either may be ``None`` when nothing in the sentence is in the vocabulary.
    """
    tokens = _TOKEN.findall(sentence.lower())
    verb_set, object_set = set(verbs), set(objects)
    max_verb = max(len(v.split()) for v in verbs)
    max_object = max(len(o.split()) for o in objects)
    verb, after = None, 0
    for i in range(len(tokens)):
        found = _match_at(tokens, i, verb_set, max_verb, _verb_forms)
        if found:
            verb, after = found[0], i + found[1]
            break
    obj = None
    for start in ([after, 0] if verb else [0]):
        for i in range(start, len(tokens)):
            found = _match_at(tokens, i, object_set, max_object, _noun_forms)
            if found:
                obj = found[0]
                break
        if obj:
            break
    return verb, obj


def segment_labels(segment: Segment, verbs: list[str], objects: list[str]) -> tuple[str | None, str | None]:
    """Ground-truth (verb, object) of a segment: given in the annotation, else extracted from its sentence.
    Given labels outside the vocabularies count as absent."""
    verb, obj = extract_verb_object(segment.sentence, verbs, objects)
    if segment.verb is not None:
        verb = segment.verb.lower() if segment.verb.lower() in verbs else None
    if segment.object is not None:
        obj = segment.object.lower() if segment.object.lower() in objects else None
    return verb, obj
