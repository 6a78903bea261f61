"""The COCO caption metrics, computed by the ``pycocoevalcap`` package itself.

``caption_metrics(references, candidates)`` runs what the COCO caption evaluation (and the
YouCook II leaderboard) runs: Stanford's PTB tokenizer (lower-cases, removes punctuation), then
BLEU-1..4 (corpus level, "closest" reference length), METEOR 1.5 (``-l en -norm``), ROUGE-L and
CIDEr-D over all segments at once (micro level). SPICE is left out: it downloads a model at run
time. Nothing is re-implemented here, so the numbers are pycocoevalcap's to the last bit.

The PTB tokenizer and METEOR are Java programs: without a ``java`` on ``PATH`` these functions
raise :class:`JavaNotFoundError` saying what to install. METEOR loads a 60 MB paraphrase table
when it starts (several seconds), so one METEOR process is started on first use and reused by
every later call in the process (it keeps no state between calls).
"""

from __future__ import annotations

import atexit
import shutil
import threading
from typing import Mapping

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")


class JavaNotFoundError(RuntimeError):
    """No Java runtime: the COCO caption metrics cannot run."""


def require_java() -> None:
    if shutil.which("java") is None:
        raise JavaNotFoundError(
            "the COCO caption metrics (pycocoevalcap's PTB tokenizer and METEOR 1.5) need a Java runtime, and no "
            "'java' is on PATH: install one, e.g. Debian/Ubuntu's `apt-get install default-jre-headless`")


_meteor = None
_meteor_lock = threading.Lock()


def _shared_meteor():
    """The process's METEOR scorer (pycocoevalcap's ``Meteor``), started on first use, restarted if it died."""
    global _meteor
    from pycocoevalcap.meteor.meteor import Meteor

    with _meteor_lock:
        if _meteor is None or _meteor.meteor_p.poll() is not None:
            _meteor = Meteor()
            atexit.register(_close_meteor)
        return _meteor


def _close_meteor() -> None:
    global _meteor
    with _meteor_lock:
        if _meteor is not None:
            _meteor.__del__()  # closes its stdin and waits for the JVM
            _meteor = None


def start_metrics() -> None:
    """Check for Java and start the shared METEOR process now: it loads its paraphrase table (seconds)
    on another core while the caller goes on (training captioners) instead of when the scores are due."""
    require_java()
    _shared_meteor()


def _check(references: Mapping[str, list[str]], candidates: Mapping[str, str], name: str) -> None:
    if set(references) != set(candidates):
        missing, extra = sorted(set(references) - set(candidates)), sorted(set(candidates) - set(references))
        raise ValueError(f"{name}: candidates and references cover different segments "
                         f"(no candidate for {missing[:3]}, no references for {extra[:3]})")
    if not references:
        raise ValueError(f"{name}: no segments to score")
    for key, refs in references.items():
        if isinstance(refs, str) or not refs or any(not isinstance(r, str) or not r.strip() for r in refs):
            raise ValueError(f"{name}: segment {key!r} needs a list of non-empty reference captions, got {refs!r}")
    for key, candidate in candidates.items():
        if not isinstance(candidate, str):
            raise ValueError(f"{name}: the candidate of segment {key!r} is not a string: {candidate!r}")


def caption_metrics_many(references: Mapping[str, list[str]], candidate_sets: Mapping[str, Mapping[str, str]]
                         ) -> dict[str, dict[str, float]]:
    """:func:`caption_metrics` of several candidate sets against the same references:
    ``{set name: {metric: value}}``. The references are tokenized once and every set's candidates
    in one more run of the tokenizer (it tokenizes each line on its own, so this changes nothing)."""
    for name, candidates in candidate_sets.items():
        _check(references, candidates, repr(name))
    require_java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    refs = tokenizer.tokenize({key: [{"caption": r} for r in references[key]] for key in references})
    all_candidates = tokenizer.tokenize({(name, key): [{"caption": c}] for name, cands in candidate_sets.items()
                                         for key, c in cands.items()})
    meteor = _shared_meteor()
    out = {}
    for name in candidate_sets:
        res = {key: all_candidates[(name, key)] for key in refs}
        bleu, _ = Bleu(4).compute_score(refs, res, verbose=0)
        scores = dict(zip(METRICS[:4], bleu))
        scores["METEOR"], _ = meteor.compute_score(refs, res)
        scores["ROUGE-L"], _ = Rouge().compute_score(refs, res)
        scores["CIDEr"], _ = Cider().compute_score(refs, res)
        out[name] = {metric: float(scores[metric]) for metric in METRICS}
    return out


def caption_metrics(references: Mapping[str, list[str]], candidates: Mapping[str, str]) -> dict[str, float]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr (fractions; CIDEr is not bounded by 1) of ``candidates``
    (segment id -> generated caption, may be empty) against ``references`` (segment id -> one or
    more reference captions), exactly as pycocoevalcap computes them.

    Raises ``ValueError`` naming the segment when the two cover different segments or a
    reference is missing or empty, and :class:`JavaNotFoundError` without a Java runtime.
    """
    return caption_metrics_many(references, {"candidates": candidates})["candidates"]
