"""ActBERT's task hooks (``videobert.tasks.scoring.TaskScoring``): a video is an array of rows of a
:class:`~videobert.models.actbert.clips.ClipStore` (each clip's S3D feature and regions).

- fill-in prompts: the text stream ``[CLS] text [SEP]`` read with the video's action and region
  streams as cues, the MLM head's log-probabilities at the masks; without a video (the language
  prior) the action and region streams hold a single ``[MASK]`` each (the model's "nothing seen");
- pair logits: the matching head on the text stream's ``[CLS]``, pairs sorted by size before batching;
- embeddings: the two towers meet in the text vocabulary. A video is what the MLM head expects, with
  the video as cue, at the two slots of the zero-shot prompt ("now let me show you how to [MASK]
  the [MASK]"): the two distributions side by side; a text is the MLM head's reading of its own
  words (the text alone), the mean distribution over its positions, in both halves. Their cosine
  is how much the video's slot predictions put on the text's words. (The text stream's ``[CLS]`` of
  text alone and of video alone, VideoBERT's towers, ranked the demo's held-out segments at chance:
  ActBERT trains on text-video pairs only, so neither input alone is one it learnt to summarise.)
- clip features: each clip's action state beside the mean of its regions' states, read with no text.

A video longer than ``max_clips`` is thinned evenly (``subsample_evenly``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from videobert.models.actbert.clips import WHOLE_FRAME, ClipStore
from videobert.models.actbert.data import pad_rows
from videobert.tasks.inputs import model_device, subsample_evenly
from videobert.tasks.zero_shot import PROMPT_MIDDLE, PROMPT_PREFIX
from videobert.vocab import UnifiedVocab

Pair = tuple[Sequence[int] | None, np.ndarray | None]


class ActBertScoring:
    family = "actbert"
    can_fill_masks = True

    def __init__(self, model: torch.nn.Module, tokenizer, store: ClipStore, batch_size: int = 128, progress: bool = False):
        self.model, self.tokenizer, self.store = model.eval(), tokenizer, store
        vocab = UnifiedVocab(text_vocab_size=model.config.text_vocab_size, num_visual_words=1)
        self.cls_id, self.sep_id, self.pad_id, self.mask_id = vocab.cls_id, vocab.sep_id, vocab.pad_id, vocab.mask_id
        self.batch_size, self.progress = batch_size, progress
        c = model.config
        if (store.action_dim, store.region_dim, store.num_classes) != (c.action_feature_dim, c.region_feature_dim, c.num_object_classes):
            raise ValueError(f"the clip store (features {store.action_dim}, regions {store.region_dim}, {store.num_classes} classes) "
                             f"does not fit the model ({c.action_feature_dim}, {c.region_feature_dim}, {c.num_object_classes})")

    def max_clips(self, text_length: int) -> int:
        return int(self.model.config.max_clips)  # clips are a stream of their own: the text takes no room

    def _batch(self, pairs: Sequence[Pair]) -> dict[str, torch.Tensor]:
        """Model inputs of ``(text ids or None, video rows or None)`` pairs, nothing masked but an
        absent video's single action and region."""
        limit = int(self.model.config.max_position_embeddings) - 2
        texts = [[self.cls_id, *list(t or [])[:limit], self.sep_id] for t, _ in pairs]
        videos = [None if v is None or len(v) == 0 else subsample_evenly(np.asarray(v, np.int64), self.max_clips(0)) for _, v in pairs]
        c, store = self.model.config, self.store
        actions, regions = [], []
        for rows in videos:
            if rows is None:
                actions.append(np.zeros((1, c.action_feature_dim), np.float32))
                regions.append((np.zeros((1, c.region_feature_dim), np.float32), WHOLE_FRAME[None], None, np.zeros(1, np.int64), None))
            else:
                actions.append(store.actions[rows])
                regions.append(store.regions(rows))
        text_width, action_width = max(map(len, texts)), max(map(len, actions))
        region_width = max(len(r[3]) for r in regions)
        absent = np.array([v is None for v in videos])
        action_masked = np.zeros((len(pairs), action_width), np.int64)
        action_masked[absent, 0] = 1
        region_masked = np.zeros((len(pairs), region_width), np.int64)
        region_masked[absent, 0] = 1
        mask = np.concatenate([pad_rows([np.ones(len(t), bool) for t in texts], text_width, False, bool),
                               pad_rows([np.ones(len(a), bool) for a in actions], action_width, False, bool),
                               pad_rows([np.ones(len(r[3]), bool) for r in regions], region_width, False, bool)], axis=1)
        batch = {
            "input_ids": pad_rows([np.asarray(t, np.int64) for t in texts], text_width, self.pad_id, np.int64),
            "attention_mask": mask.astype(np.int64),
            "action_features": pad_rows(actions, action_width, 0.0, np.float32), "action_masked": action_masked,
            "region_features": pad_rows([r[0] for r in regions], region_width, 0.0, np.float32),
            "region_locations": pad_rows([r[1] for r in regions], region_width, 0.0, np.float32),
            "region_clips": pad_rows([r[3] for r in regions], region_width, 0, np.int64), "region_masked": region_masked,
        }
        device = model_device(self.model)
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}

    def _batches(self, pairs: Sequence[Pair], desc: str):
        """``(rows, batch)`` over ``pairs`` in batches of similar size (sorted by text + clips)."""
        sizes = [len(t or []) + (0 if v is None else min(len(v), self.max_clips(0))) for t, v in pairs]
        order = np.argsort(sizes, kind="stable")
        starts = range(0, len(order), self.batch_size)
        if self.progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc=desc, unit="batch")
        for start in starts:
            rows = order[start : start + self.batch_size]
            yield rows, self._batch([pairs[r] for r in rows])

    @torch.inference_mode()
    def fill_masks(self, text: list[int], slots: Sequence[tuple[int, int]], videos: Sequence[np.ndarray | None]
                   ) -> list[torch.Tensor]:
        out = [torch.empty(len(videos), count, self.model.config.text_vocab_size) for _, count in slots]
        for rows, batch in self._batches([(text, v) for v in videos], "fill-in"):
            hidden = self.model.encode(**batch).text
            for slot, (start, count) in enumerate(slots):  # position 0 is [CLS]: text offset i is position 1 + i
                logits = self.model.text_logits(hidden[:, 1 + start : 1 + start + count]).float()
                out[slot][torch.as_tensor(rows)] = torch.log_softmax(logits, dim=-1).cpu()
        return out

    @torch.inference_mode()
    def pair_logits(self, texts: Sequence[list[int]], videos: Sequence[np.ndarray], text_index: np.ndarray,
                    video_index: np.ndarray) -> np.ndarray:
        pairs = [(texts[t], videos[v]) for t, v in zip(np.asarray(text_index), np.asarray(video_index))]
        out = np.empty(len(pairs), dtype=np.float64)
        for rows, batch in self._batches(pairs, "matching"):
            out[rows] = self.model.matching_logits(self.model.encode(**batch).text).double().cpu().numpy()
        return out

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[list[int]]) -> torch.Tensor:
        vocab = self.model.config.text_vocab_size
        out = torch.empty((len(texts), 2 * vocab))
        for rows, batch in self._batches([(t, None) for t in texts], "embed texts"):
            words = batch["attention_mask"][:, : batch["input_ids"].shape[1]].clone()
            words[:, 0] = 0  # [CLS] and [SEP] are no words of the text
            words[torch.arange(len(rows)), words.sum(1)] = 0
            probs = torch.softmax(self.model.text_logits(self.model.encode(**batch).text).float(), dim=-1)
            mean = (probs * words[..., None]).sum(1) / words.sum(1, keepdim=True).clamp_min(1)
            out[torch.as_tensor(rows)] = torch.cat([mean, mean], dim=-1).cpu()
        return torch.nn.functional.normalize(out, dim=-1)

    def embed_videos(self, videos: Sequence[np.ndarray]) -> torch.Tensor:
        prefix, middle = self.tokenizer.encode_batch([PROMPT_PREFIX, PROMPT_MIDDLE])
        prompt = [*prefix, self.mask_id, *middle, self.mask_id]
        verb, noun = self.fill_masks(prompt, [(len(prefix), 1), (len(prefix) + 1 + len(middle), 1)], list(videos))
        return torch.nn.functional.normalize(torch.cat([verb[:, 0].exp(), noun[:, 0].exp()], dim=-1), dim=-1)

    @property
    def clip_feature_dim(self) -> int:
        return 2 * int(self.model.config.hidden_size)

    @property
    def max_feature_clips(self) -> int:
        return int(self.model.config.max_clips)

    @torch.inference_mode()
    def clip_features(self, videos: Sequence[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros((0, self.clip_feature_dim), np.float32)] * len(videos)
        kept = [subsample_evenly(np.asarray(v, np.int64), self.max_feature_clips) for v in videos]
        for rows, batch in self._batches([([], v if len(v) else None) for v in kept], "clip features"):
            states = self.model.encode(**batch)
            clips = batch["region_clips"]
            real = batch["attention_mask"][:, -clips.shape[1]:].bool()
            for b, r in enumerate(rows):
                n = len(kept[r])
                if not n:
                    continue
                onehot = torch.nn.functional.one_hot(clips[b], states.action.shape[1]).float() * real[b, :, None]
                region_mean = (onehot.t() @ states.region[b]) / onehot.sum(0).clamp_min(1)[:, None]
                out[r] = torch.cat([states.action[b, :n], region_mean[:n]], dim=-1).float().cpu().numpy()
        return out
