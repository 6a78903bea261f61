"""Splitting an ASR word stream into timed sentences.

ASR output often has no punctuation. The rule-based splitter ends a sentence

1. after a word ending in ``.``, ``!``, ``?`` or ``…`` (closing quotes and brackets ignored), unless
   the word is a common abbreviation (``mr.``, ``e.g.``, ...);
2. at a pause: the next word starts more than ``max_pause`` seconds after this one ends;
3. at ``max_words`` words: a run that reaches the cap with neither ends after the word followed by the
   widest gap in the run's second half (the last word where the gaps are even), so that a long
   unpunctuated ASR stream is cut where the speaker paused most, not mid-phrase.

A ``Punctuator`` (the paper used an LSTM punctuation model) can restore punctuation first: it gets
the words of the whole stream and returns them with punctuation added, and rule 1 then applies to
its output. Without one (the default), the punctuation already in the transcript is used.

Word times: cues with word timings (YouTube's inline ``<00:00:01.230><c>`` tags, word-level JSON)
give them directly, so pauses are found between any two words, not only between cues; otherwise a
cue's time is spread over its words in proportion to their length in characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, Sequence

from videobert.text.cues import Cue, Word

_END = re.compile(r"[.!?…]+[\"')\]»”’]*$")
ABBREVIATIONS = frozenset(
    "mr. mrs. ms. dr. prof. st. sr. jr. vs. etc. e.g. i.e. approx. no. tbsp. tsp. oz. lb. lbs. min. hr. fig.".split()
)


@dataclass(frozen=True)
class Sentence:
    """A timed sentence: ``start`` / ``end`` in seconds and its ``text`` (words joined by spaces)."""

    start: float
    end: float
    text: str


class Punctuator(Protocol):
    """Restores punctuation in an unpunctuated word stream."""

    def punctuate(self, words: Sequence[str]) -> list[str]:
        """``words`` -> the same number of words, each possibly with punctuation added."""
        ...


def cue_words(cues: Sequence[Cue]) -> list[Word]:
    """All words of ``cues`` with times, in order (times spread by length where a cue has none)."""
    words: list[Word] = []
    for cue in cues:
        if cue.words:
            words.extend(cue.words)
            continue
        tokens = cue.text.split()
        total = sum(len(t) for t in tokens)
        t = cue.start
        for token in tokens:
            step = (cue.end - cue.start) * len(token) / total
            words.append(Word(t, t + step, token))
            t += step
    return words


def ends_sentence(word: str) -> bool:
    """Whether ``word``'s punctuation ends a sentence (rule 1 above)."""
    if not _END.search(word):
        return False
    return word.lower().rstrip("\"')]»”’") not in ABBREVIATIONS


def split_sentences(
    cues: Sequence[Cue],
    punctuator: Punctuator | None = None,
    max_pause: float = 1.0,
    max_words: int = 40,
) -> list[Sentence]:
    """Timed cues -> timed sentences (the rules are in the module docstring).

    ``max_pause``: seconds of silence that end a sentence; ``max_words``: the longest sentence.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    words = cue_words(cues)
    texts = [w.text for w in words]
    if punctuator is not None and words:
        texts = punctuator.punctuate(texts)
        if len(texts) != len(words):
            raise ValueError(f"the punctuator returned {len(texts)} words for {len(words)}")
    def gap_after(i: int) -> float:
        return words[i + 1].start - words[i].end if i + 1 < len(words) else float("inf")

    sentences: list[Sentence] = []
    first = i = 0
    while i < len(words):
        if gap_after(i) > max_pause or ends_sentence(texts[i]):
            cut = i
        elif i + 1 - first >= max_words:
            # gaps compared to the millisecond (transcripts' precision): float noise must not pick the cut
            cut = max(range(first + max_words // 2, i + 1), key=lambda k: (round(gap_after(k), 3), k))
        else:
            i += 1
            continue
        sentences.append(Sentence(words[first].start, words[cut].end, " ".join(texts[first : cut + 1])))
        first = i = cut + 1
    return sentences
