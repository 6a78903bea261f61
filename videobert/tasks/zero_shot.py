"""Zero-shot action classification on YouCook II (the paper's protocol, section 4.2).

For each annotated segment the model reads

    [CLS] now let me show you how to [MASK] the [MASK] [>] <the segment's visual words> [SEP]

and ranks the verb vocabulary at the first mask and the object vocabulary at the second. The
language-prior baseline reads the same sentence with no video (``[CLS] text [SEP]``), so it
predicts the same ranking for every segment.

Words of several WordPieces ("sprinkle" -> "sp", "##rin", "##kle"), two scorings:
- ``"mean"`` (default): the slot gets as many masks as the candidate has pieces and the candidate
  scores the mean over its pieces of log p(piece_i at mask_i), all read from one pass (pieces are
  scored independently, as a pseudo-likelihood). One pass per distinct piece count per slot; the
  other slot keeps a single mask.
- ``"first"``: one mask per slot; a candidate scores the log-probability of its first piece
  (candidates sharing a first piece tie; ties go to the earlier vocabulary entry).

Any model family: the prompt is read through the family's task hooks (``videobert.tasks.scoring``).
A family without a masked-word head (``can_fill_masks`` false, e.g. VideoPrism) is scored by
prompt embeddings instead (``method = "prompt-embedding"``): every filled prompt "now let me show
you how to <verb> the <object>" is embedded as text, each segment's video as video; a verb scores
its best prompt's cosine over the objects, an object its best over the verbs. That method has no
language prior (no text-only reading of a masked slot), so the report holds only ``"video"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from videobert.tasks.annotations import Segment, segment_labels
from videobert.tasks.metrics import ClassificationReport, classification_report, rank_of_labels, top_k
from videobert.tasks.scoring import task_scoring
from videobert.tasks.sources import VideoWords, segment_words

log = logging.getLogger(__name__)

PROMPT_PREFIX = "now let me show you how to"
PROMPT_MIDDLE = "the"


class SlotVocabulary:
    """One slot's candidate classes and their WordPiece ids, grouped by piece count."""

    def __init__(self, names: Sequence[str], tokenizer):
        self.names = list(names)
        self.pieces = tokenizer.encode_batch(self.names)
        for name, pieces in zip(self.names, self.pieces):
            if not pieces:
                raise ValueError(f"class {name!r} tokenises to no WordPieces")
        self.lengths = sorted({len(p) for p in self.pieces})

    def scores(self, log_probs_by_length: dict[int, torch.Tensor], scoring: str) -> torch.Tensor:
        """Candidate scores ``[B, C]`` from slot log-probabilities ``{n: [B, n, V]}``."""
        batch = next(iter(log_probs_by_length.values())).shape[0]
        out = torch.empty(batch, len(self.names))
        if scoring == "first":
            firsts = torch.tensor([p[0] for p in self.pieces])
            out[:] = log_probs_by_length[1][:, 0, firsts]
            return out
        for n in self.lengths:
            members = [c for c, p in enumerate(self.pieces) if len(p) == n]
            pieces = torch.tensor([self.pieces[c] for c in members])  # [C_n, n]
            lp = log_probs_by_length[n][:, torch.arange(n)[None, :], pieces]  # [B, C_n, n]
            out[:, members] = lp.mean(dim=2)
        return out


@dataclass
class ZeroShotResult:
    """Verb and object reports with video (``"video"``) and without (``"prior"``, fill-in method only)."""

    verb: dict[str, ClassificationReport]
    object: dict[str, ClassificationReport]
    num_segments: int
    skipped: dict[str, int]
    method: str = "fill-in"  # or "prompt-embedding" (module docstring)
    predictions: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"verb": {k: v.to_dict() for k, v in self.verb.items()},
                "object": {k: v.to_dict() for k, v in self.object.items()}, "method": self.method,
                "num_segments": self.num_segments, "skipped": self.skipped, "predictions": self.predictions}


class ZeroShotClassifier:
    """Ranks verbs and objects for segments with a pretrained model of any family.

    ``model``: the model, or its family's task hooks (``videobert.tasks.scoring``; families that
    read videos from a store need them). ``tokenizer`` needs ``encode_batch(texts) ->
    list[list[int]]`` (WordPiece ids, no specials).
    """

    def __init__(self, model, tokenizer, verbs: Sequence[str], objects: Sequence[str],
                 scoring: str = "mean", batch_size: int = 32):
        if scoring not in ("mean", "first"):
            raise ValueError(f"scoring must be 'mean' or 'first', got {scoring!r}")
        self.hooks = task_scoring(model, tokenizer)
        self.method = "fill-in" if self.hooks.can_fill_masks else "prompt-embedding"
        self.tokenizer = tokenizer
        self.verbs = SlotVocabulary(verbs, tokenizer)
        self.objects = SlotVocabulary(objects, tokenizer)
        self.scoring = scoring
        self.batch_size = batch_size
        self.prefix, self.middle = tokenizer.encode_batch([PROMPT_PREFIX, PROMPT_MIDDLE])

    def _prompt(self, verb_masks: int, object_masks: int) -> tuple[list[int], int, int]:
        """Prompt ids and where its verb and object slots start (offsets in the prompt)."""
        m = self.hooks.mask_id
        ids = self.prefix + [m] * verb_masks + self.middle + [m] * object_masks
        verb_at = len(self.prefix)
        return ids, verb_at, verb_at + verb_masks + len(self.middle)

    def _variants(self) -> list[tuple[str, int, int, int]]:
        """(slot, piece count, verb masks, object masks) of every pass a segment needs."""
        if self.scoring == "first":
            return [("both", 1, 1, 1)]
        return [("verb", n, n, 1) for n in self.verbs.lengths] + [("object", n, 1, n) for n in self.objects.lengths]

    def score(self, videos: Sequence[np.ndarray | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Verb scores ``[S, n_verbs]`` and object scores ``[S, n_objects]`` for segments given by
        their clips (``None``: no video, the language prior; fill-in method only): mean
        log-probabilities (fill-in) or cosines (prompt embedding)."""
        if self.method == "prompt-embedding":
            return self._score_by_embedding(videos)
        verb_out, object_out = [], []
        for b in range(0, len(videos), self.batch_size):
            chunk = videos[b : b + self.batch_size]
            verb_lp: dict[int, torch.Tensor] = {}
            object_lp: dict[int, torch.Tensor] = {}
            for slot, n, verb_masks, object_masks in self._variants():
                text, verb_at, object_at = self._prompt(verb_masks, object_masks)
                verb_slot, object_slot = self.hooks.fill_masks(text, [(verb_at, verb_masks), (object_at, object_masks)], chunk)
                if slot in ("verb", "both"):
                    verb_lp[n] = verb_slot
                if slot in ("object", "both"):
                    object_lp[n] = object_slot
            verb_out.append(self.verbs.scores(verb_lp, self.scoring))
            object_out.append(self.objects.scores(object_lp, self.scoring))
        return torch.cat(verb_out), torch.cat(object_out)

    def _score_by_embedding(self, videos: Sequence[np.ndarray | None]) -> tuple[torch.Tensor, torch.Tensor]:
        if any(v is None for v in videos):
            raise ValueError("prompt-embedding zero-shot has no language prior: every segment needs its video")
        prompts = [f"{PROMPT_PREFIX} {verb} {PROMPT_MIDDLE} {obj}" for verb in self.verbs.names for obj in self.objects.names]
        text = self.hooks.embed_texts(self.tokenizer.encode_batch(prompts)).float()
        video = self.hooks.embed_videos(list(videos)).float()
        cosine = (video @ text.T).cpu().view(len(videos), len(self.verbs.names), len(self.objects.names))
        return cosine.amax(dim=2), cosine.amax(dim=1)

    def evaluate(self, segments: Sequence[Segment], video_words: VideoWords, keep_predictions: int = 5
                 ) -> ZeroShotResult:
        """Verb / object top-1 and top-5 with video and with the language prior, overall and per class.

        Segments are mapped to visual words through ``video_words`` (clip centre inside the
        segment). Segments whose video is missing, that hold no clip, or that have neither label
        in the vocabularies are skipped and counted in ``skipped``.
        """
        skipped = {"missing_video": 0, "no_clips": 0, "no_label": 0}
        kept: list[tuple[Segment, np.ndarray, int, int]] = []
        for seg in segments:
            verb, obj = segment_labels(seg, self.verbs.names, self.objects.names)
            if verb is None and obj is None:
                skipped["no_label"] += 1
                continue
            if seg.video_id not in video_words:
                skipped["missing_video"] += 1
                continue
            words = segment_words(*video_words[seg.video_id], seg.start, seg.end)
            if words.size == 0:
                skipped["no_clips"] += 1
                continue
            kept.append((seg, words, self.verbs.names.index(verb) if verb else -1,
                         self.objects.names.index(obj) if obj else -1))
        if skipped["missing_video"] or skipped["no_clips"]:
            log.warning("zero-shot: skipped %s", skipped)
        if not kept:
            raise ValueError(f"zero-shot: no segment could be evaluated (skipped: {skipped})")
        verb_scores, object_scores = self.score([words for _, words, _, _ in kept])
        prior_verb, prior_object = self.score([None]) if self.method == "fill-in" else (None, None)
        verb_labels = np.array([v for _, _, v, _ in kept], dtype=np.int64)
        object_labels = np.array([o for _, _, _, o in kept], dtype=np.int64)

        def reports(scores: torch.Tensor, prior: torch.Tensor | None, labels: np.ndarray, names: list[str]):
            has = labels >= 0
            out = {"video": classification_report(rank_of_labels(scores.numpy()[has], labels[has]), labels[has], names)}
            if prior is not None:
                prior_ranks = rank_of_labels(np.repeat(prior.numpy(), has.sum(), axis=0), labels[has])
                out["prior"] = classification_report(prior_ranks, labels[has], names)
            return out

        predictions = []
        if keep_predictions:
            verb_top = top_k(verb_scores.numpy(), keep_predictions)
            object_top = top_k(object_scores.numpy(), keep_predictions)
            for i, (seg, words, v, o) in enumerate(kept):
                predictions.append({"video_id": seg.video_id, "start": seg.start, "end": seg.end,
                                    "sentence": seg.sentence, "num_visual_words": int(words.size),
                                    "verb": self.verbs.names[v] if v >= 0 else None,
                                    "object": self.objects.names[o] if o >= 0 else None,
                                    "verb_top": [self.verbs.names[j] for j in verb_top[i]],
                                    "object_top": [self.objects.names[j] for j in object_top[i]]})
        return ZeroShotResult(verb=reports(verb_scores, prior_verb, verb_labels, self.verbs.names),
                              object=reports(object_scores, prior_object, object_labels, self.objects.names),
                              num_segments=len(kept), skipped=skipped, method=self.method, predictions=predictions)
