"""VideoBERT's task hooks (``videobert.tasks.scoring.TaskScoring``): a video is its clips' visual words.

- fill-in prompts: ``[CLS] text [>] video [SEP]`` (text alone: ``[CLS] text [SEP]``), the MLM head's
  log-probabilities at the masks;
- pair logits: the alignment head on ``[CLS] text [>] video [SEP]``, pairs sorted by length before
  batching so a batch pads to nearly its own length, laid out by tensor indexing
  (``videobert.models.videobert.pairs``);
- embeddings: the last hidden state at ``[CLS]`` of the text alone and of the video alone
  (``[CLS] [>] video [SEP]``). Why ``[CLS]`` and not the mean over the tokens: on the demo's
  held-out segments (narration queries) it ranked the right segment first for 19% of the sentences
  against 5% for the mean, whose cosine is dominated by the words every narration shares;
- clip features: the paper's fill-in template read with the video (``template.TemplateEncoder``).

A video longer than fits beside its text is thinned evenly (``subsample_evenly``).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch

from videobert.models.videobert.pairs import PairTables, pair_batch
from videobert.tasks.inputs import build_sequence, max_length, model_device, pack, subsample_evenly

log = logging.getLogger(__name__)


class VideoBertScoring:
    family = "videobert"
    can_fill_masks = True

    def __init__(self, model: torch.nn.Module, tokenizer, batch_size: int = 256, progress: bool = False):
        """``tokenizer.encode_batch(texts)`` gives WordPiece ids (the captioning template needs it)."""
        self.model, self.tokenizer = model.eval(), tokenizer
        self.vocab = model.config.vocab
        self.mask_id = self.vocab.mask_id
        self.batch_size, self.progress = batch_size, progress
        self._template = None

    def max_clips(self, text_length: int) -> int:
        return max_length(self.model) - text_length - 3  # [CLS] text [>] video [SEP]

    def _sequence(self, text: Sequence[int] | None, video: np.ndarray | None) -> tuple[list[int], list[int]]:
        room = self.max_clips(len(text) if text is not None else 0)
        words = None if video is None else self.vocab.visual_ids(subsample_evenly(video, room)).tolist()
        return build_sequence(self.vocab, text, words)

    @torch.inference_mode()
    def fill_masks(self, text: list[int], slots: Sequence[tuple[int, int]], videos: Sequence[np.ndarray | None]
                   ) -> list[torch.Tensor]:
        batch = pack([self._sequence(text, v) for v in videos], self.vocab.pad_id, model_device(self.model))
        hidden = self.model.encode(**batch)
        # position 0 is [CLS]: text offset i is input position 1 + i
        return [torch.log_softmax(self.model.text_logits(hidden[:, 1 + start : 1 + start + count]).float(), dim=-1).cpu()
                for start, count in slots]

    @torch.inference_mode()
    def pair_logits(self, texts: Sequence[list[int]], videos: Sequence[np.ndarray], text_index: np.ndarray,
                    video_index: np.ndarray, sort_by_length: bool = True) -> np.ndarray:
        """``sort_by_length=False`` batches in the given order (the benchmark's naive padding)."""
        tables = PairTables.build(self.model, texts, videos)
        device = tables.texts.device
        t = torch.as_tensor(np.asarray(text_index, dtype=np.int64), device=device)
        v = torch.as_tensor(np.asarray(video_index, dtype=np.int64), device=device)
        order = (torch.argsort(tables.pair_lengths(t, v), stable=True) if sort_by_length
                 else torch.arange(len(t), device=device))
        out = torch.empty(len(t), dtype=torch.float64, device=device)
        starts = range(0, len(t), self.batch_size)
        if self.progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="cross-encoder", unit="batch")
        for start in starts:
            rows = order[start : start + self.batch_size]
            batch = pair_batch(tables, self.vocab, t[rows], v[rows])
            out[rows] = self.model.alignment_logits(self.model.encode(**batch)).double()
        return out.cpu().numpy()

    @torch.inference_mode()
    def _embed(self, sequences: list[tuple[list[int], list[int]]]) -> torch.Tensor:
        """Unit-length ``[CLS]`` states ``[N, H]`` float32 (on the model's device), batched by length."""
        order = np.argsort([len(ids) for ids, _ in sequences], kind="stable")
        out = torch.empty((len(sequences), self.model.config.hidden_size), device=model_device(self.model))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = pack([sequences[r] for r in rows], self.vocab.pad_id, model_device(self.model))
            out[torch.as_tensor(rows, device=out.device)] = self.model.encode(**batch)[:, 0].float()
        return torch.nn.functional.normalize(out, dim=-1)

    def embed_texts(self, texts: Sequence[list[int]]) -> torch.Tensor:
        limit = max_length(self.model)
        return self._embed([build_sequence(self.vocab, list(t[: limit - 2]), None) for t in texts])

    def embed_videos(self, videos: Sequence[np.ndarray]) -> torch.Tensor:
        return self._embed([self._sequence(None, v) for v in videos])

    @property
    def template(self):
        from videobert.models.videobert.template import TemplateEncoder

        if self._template is None:
            self._template = TemplateEncoder(self.model, self.tokenizer)
        return self._template

    @property
    def clip_feature_dim(self) -> int:
        return self.template.output_dim

    @property
    def max_feature_clips(self) -> int:
        return self.template.max_clips

    def clip_features(self, videos: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.template.encode(videos)
