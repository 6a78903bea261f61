"""Action labels: the verbs of a sentence, lemmatised, mapped to an action vocabulary.

ActBERT's masked action classification predicts a clip's action from its context; the label of a
clip is the action of the sentence it belongs to. A sentence's action is its first *content* verb
(lemmatised with ``lemminflect``) that is in the vocabulary: words that can be verbs but are
auxiliaries or narration's framing ("is", "will", "let me show you how to ...") are passed over.
Without a part-of-speech tagger a noun that can be a verb ("square") counts as a verb too; the
vocabulary's order of preference (first verb in the sentence) keeps "spin the square" a *spin*.

The vocabulary is a given list (e.g. the demo's ``verbs.txt``) or the ``size`` most frequent
content verbs of a corpus's sentences (ties by the verb, for determinism).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from videobert.utils.io import write_text_atomic

IGNORE = -100
# Verbs that frame an instruction rather than name the action ("let me show you how to ...",
# "this is how you ...", "watch how to ...", "i will ...").
FRAMING_VERBS = frozenset({
    "be", "have", "do", "will", "would", "shall", "should", "can", "could", "may", "might", "must",
    "let", "show", "watch", "see", "look", "go", "keep", "come", "get", "want", "need", "know", "say",
    "think", "try", "start", "begin", "continue", "use", "make", "like",
})
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def verb_lemmas(sentence: str) -> list[str]:
    """The lemmas of the words of ``sentence`` that can be verbs, in order, framing verbs left out."""
    from lemminflect import getAllLemmas

    lemmas = []
    for word in _WORD.findall(sentence.lower()):
        candidates = getAllLemmas(word).get("VERB")
        if candidates and candidates[0] not in FRAMING_VERBS:
            lemmas.append(candidates[0])
    return lemmas


class ActionVocab:
    """Action names -> ids ``0 .. len-1``; ``label(sentence)`` gives a sentence's action id."""

    def __init__(self, actions: Sequence[str]) -> None:
        actions = [a.strip().lower() for a in actions if a.strip()]
        if not actions:
            raise ValueError("an action vocabulary needs at least one action")
        duplicates = sorted({a for a in actions if actions.count(a) > 1})
        if duplicates:
            raise ValueError(f"action vocabulary has duplicates: {duplicates}")
        self.actions = actions
        self.ids = {action: i for i, action in enumerate(actions)}

    def __len__(self) -> int:
        return len(self.actions)

    @classmethod
    def most_frequent(cls, sentences: Iterable[str], size: int) -> "ActionVocab":
        """The ``size`` most frequent content verbs of ``sentences`` (each counted once per sentence)."""
        counts = Counter(lemma for sentence in sentences for lemma in set(verb_lemmas(sentence)))
        if not counts:
            raise ValueError("no verbs found in the sentences: give the action vocabulary as a list")
        return cls([verb for verb, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:size]])

    @classmethod
    def from_list(cls, verbs: Sequence[str]) -> "ActionVocab":
        """A given list, lemmatised ("spinning" -> "spin")."""
        from lemminflect import getLemma

        return cls([(getLemma(v.strip().lower(), upos="VERB") or (v.strip().lower(),))[0] for v in verbs if v.strip()])

    def label(self, sentence: str) -> int:
        """The id of the first vocabulary verb of ``sentence``, or -100 (no action)."""
        return next((self.ids[lemma] for lemma in verb_lemmas(sentence) if lemma in self.ids), IGNORE)

    def save(self, path: str | os.PathLike) -> None:
        write_text_atomic(path, "\n".join(self.actions) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ActionVocab":
        return cls(Path(path).read_text(encoding="utf-8").splitlines())
