"""VideoPrism's task hooks (``videobert.tasks.scoring.TaskScoring``): two towers over a clip store.

A video is an int64 array of clip-store rows (``videobert.video.clip_store``), in time order.

- embeddings: a video's frames spread evenly to the model's ``num_frames`` (the middle of each
  share, no jitter) through the encoder and the attention pooler; a text through the text tower;
  both unit length, in the contrastive space of stage 1 (a stage-2 model's pooled embedding is held
  there by the global distillation) or of stage 3 (the text alignment on the frozen encoder);
- pair logits: the cosine scaled by the learned temperature (``1 / T``), the logit of stage 1's loss;
- zero-shot: there is no masked-word head (``can_fill_masks = False``): the task compares the video
  with the embedding of every filled prompt instead;
- clip features (captioning): the video is read in windows of whole clips, as many as
  ``num_frames`` frames hold; a clip's feature is the mean of the encoder's output tokens over its
  frames (all spatial positions), i.e. the clip's tokens in the context of its window.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from videobert.models.videoprism.data import spread_frames
from videobert.models.videoprism.model import VideoPrismForPretraining
from videobert.models.videoprism.text import text_batch
from videobert.tasks.inputs import model_device
from videobert.video.clip_store import ClipStore
from videobert.vocab import UnifiedVocab


class VideoPrismScoring:
    family = "videoprism"
    can_fill_masks = False
    mask_id = UnifiedVocab().mask_id

    def __init__(self, model: VideoPrismForPretraining, clips: ClipStore | str | os.PathLike, batch_size: int = 64,
                 progress: bool = False, max_feature_clips: int = 64):
        self.model = model.eval()
        self.store = clips if isinstance(clips, ClipStore) else ClipStore(clips)
        config = model.config
        if self.store.size != config.image_size:
            raise ValueError(f"clip store {self.store.directory} holds {self.store.size} px frames; the model reads "
                             f"{config.image_size} px (image_size)")
        self.batch_size, self.progress = batch_size, progress
        self._max_feature_clips = max_feature_clips
        # whole clips per window of at most num_frames frames (one clip when a clip holds more)
        self.window_clips = max(1, config.num_frames // self.store.frames_per_clip)

    def max_clips(self, text_length: int) -> int:
        """The video side is read apart from the text: ``num_frames`` clips keep a frame each."""
        return self.model.config.num_frames

    def fill_masks(self, text, slots, videos):
        raise NotImplementedError("videoprism has no masked-word head (can_fill_masks is False): "
                                  "zero-shot classification uses prompt embeddings")

    def _video_frames(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            raise ValueError("a video needs at least one clip")
        frames = self.store.frames(rows).reshape(-1, self.store.size, self.store.size, 3)
        return frames[spread_frames(len(frames), self.model.config.num_frames)]

    def _batches(self, count: int) -> range:
        starts = range(0, count, self.batch_size)
        if self.progress:
            from tqdm import tqdm

            return tqdm(starts, desc="videoprism", unit="batch")
        return starts

    @torch.inference_mode()
    def embed_videos(self, videos: Sequence[np.ndarray]) -> torch.Tensor:
        device = model_device(self.model)
        out = []
        for start in self._batches(len(videos)):
            frames = np.stack([self._video_frames(v) for v in videos[start : start + self.batch_size]])
            out.append(self.model.embed_video(torch.from_numpy(frames).to(device)))
        return F.normalize(torch.cat(out), dim=-1)

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[list[int]]) -> torch.Tensor:
        device = model_device(self.model)
        text = self.model.config.text
        out = []
        for start in self._batches(len(texts)):
            batch = text_batch(texts[start : start + self.batch_size], text.vocab_size, text.max_position_embeddings)
            out.append(self.model.embed_text(batch["text_ids"].to(device), batch["text_mask"].to(device)))
        return F.normalize(torch.cat(out), dim=-1)

    @torch.inference_mode()
    def pair_logits(self, texts: Sequence[list[int]], videos: Sequence[np.ndarray], text_index: np.ndarray,
                    video_index: np.ndarray) -> np.ndarray:
        """``logit_scale * cos(text, video)`` of each pair (each text and video embedded once)."""
        text_index, video_index = np.asarray(text_index, dtype=np.int64), np.asarray(video_index, dtype=np.int64)
        used_texts, text_at = np.unique(text_index, return_inverse=True)
        used_videos, video_at = np.unique(video_index, return_inverse=True)
        text = self.embed_texts([texts[i] for i in used_texts])
        video = self.embed_videos([videos[i] for i in used_videos])
        cosine = (text[torch.as_tensor(text_at)] * video[torch.as_tensor(video_at)]).sum(-1)
        return (self.model.logit_scale * cosine).double().cpu().numpy()

    @property
    def clip_feature_dim(self) -> int:
        return self.model.config.hidden_size

    @property
    def max_feature_clips(self) -> int:
        return self._max_feature_clips

    @torch.inference_mode()
    def clip_features(self, videos: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per video ``[n, hidden_size]`` float32: each clip's mean output token in its window."""
        device = model_device(self.model)
        per_clip = self.store.frames_per_clip * self.window_clips
        frame_index = spread_frames(per_clip, min(per_clip, self.model.config.num_frames))
        clip_of_frame = torch.as_tensor(frame_index // self.store.frames_per_clip, device=device)
        windows = [(v, lo) for v, rows in enumerate(videos) for lo in range(0, len(rows), self.window_clips)]
        features = [np.zeros((len(rows), self.clip_feature_dim), np.float32) for rows in videos]
        for start in self._batches(len(windows)):
            chunk = windows[start : start + self.batch_size]
            frames = []
            for v, lo in chunk:
                rows = np.asarray(videos[v][lo : lo + self.window_clips], dtype=np.int64)
                # a short last window repeats its last clip: every window has the same frames
                rows = np.concatenate([rows, np.repeat(rows[-1:], self.window_clips - len(rows))])
                frames.append(self.store.frames(rows).reshape(-1, self.store.size, self.store.size, 3)[frame_index])
            tokens = self.model.encode_video(torch.from_numpy(np.stack(frames)).to(device)).mean(dim=2)  # [W, T, D]
            sums = torch.zeros(len(chunk), self.window_clips, tokens.shape[-1], device=device)
            sums.index_add_(1, clip_of_frame, tokens)
            counts = torch.bincount(clip_of_frame, minlength=self.window_clips).clamp_min(1)
            means = (sums / counts[None, :, None]).cpu().numpy()
            for k, (v, lo) in enumerate(chunk):
                n = min(self.window_clips, len(videos[v]) - lo)
                features[v][lo : lo + n] = means[k, :n]
        return features
