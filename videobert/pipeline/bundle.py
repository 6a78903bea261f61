"""``VideoBertPipeline``: a pretrained VideoBERT with everything that turns a video file into its
input, in one directory (Hugging Face Hub style) that ``from_pretrained`` reads.

Bundle layout::

    pipeline.json            format, clip spec (fps, clip frames, size, partial), S3D weights
                             (SHA-256 and the path they were read from, or the seed of random ones)
    config.json              the VideoBERT model config        } VideoBertForPretraining.save_pretrained
    model.safetensors        its weights                        }
    vocab.txt | tokenizer.json  the WordPiece tokenizer the model's text ids come from
    visual_words.safetensors the hierarchical k-means tree (HierarchicalKMeans.save)
    captioner/               optional: a trained captioner (Captioner.save_pretrained); pipeline.json
                             names its feature variant (s3d, videobert or videobert+s3d)

The S3D weights themselves (32 MB, torchvision's licence) are not copied: the bundle records their
digest, and ``from_pretrained`` checks the file it is given (or the recorded path) against it.
A video goes through exactly the extraction the model was trained on: ``read_raw_clips`` with the
bundle's clip spec, ``normalize_clips``, S3D with BatchNorm folded, then the tree.

``caption(path)`` builds the captioner's input for its variant exactly as ``videobert eval caption``
does (``videobert.tasks.captioning``: clips evenly subsampled to what fits beside the template, the
template outputs, S3D features) and decodes with beam search. The captioner must have been trained
on this model's features (``videobert eval caption`` with the same run's model, tree and extraction).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np
import torch

from videobert.utils.io import atomic_path, write_json_atomic

if TYPE_CHECKING:
    from videobert.tasks.captioning.data import VideoClips

FORMAT = "videobert-pipeline"
VERSION = 1
PIPELINE_FILE = "pipeline.json"
TREE_FILE = "visual_words.safetensors"
CAPTIONER_DIR = "captioner"
NO_CAPTIONER = ("this pipeline has no captioner: train one with `videobert eval caption --model MODEL ... --out DIR` "
                "on this run's model, tree and features, then write the bundle with `videobert export RUN OUT "
                "--pipeline --captioner DIR/captioners/videobert+s3d` "
                "(or call set_captioner(Captioner.from_pretrained(...)))")


class TimedCaption(NamedTuple):
    """A caption of the clips from ``start`` to ``end`` (seconds, the first clip's start and the last one's end)."""

    start: float
    end: float
    caption: str


@dataclass(frozen=True)
class S3DSource:
    """Which S3D weights the features came from: ``identity`` is ``sha256:<hex>`` (a weights file,
    ``path`` where it was read) or ``random(seed=N)`` (features for tests and demos)."""

    identity: str
    path: str | None = None

    @classmethod
    def of(cls, weights: str | os.PathLike | None, seed: int = 0) -> "S3DSource":
        from videobert.features.weights import weights_identity

        return cls(weights_identity(weights, seed), str(Path(weights).resolve()) if weights else None)

    def check(self, weights: str | os.PathLike) -> None:
        """Raise unless the file ``weights`` has the recorded digest."""
        from videobert.features.weights import check_weights_file

        digest = check_weights_file(weights)
        if f"sha256:{digest}" != self.identity:
            raise ValueError(f"{weights}: SHA-256 {digest[:12]}... is not that of the S3D weights this pipeline was "
                             f"trained with ({self.identity[:19]}...)")

    def load(self, weights: str | os.PathLike | None, device: torch.device) -> torch.nn.Module:
        """The folded S3D ``extract`` ran: random ones rebuilt from their seed, a weights file
        (``weights``, else the recorded path) checked against the recorded digest."""
        from videobert.features.extract import load_model

        if self.identity.startswith("random(seed="):
            return load_model(None, device, int(self.identity[len("random(seed="):-1]))[0]
        path = weights or self.path
        if not path:
            raise ValueError(f"this pipeline's features came from S3D weights {self.identity}: give s3d_weights=FILE")
        self.check(path)
        return load_model(str(path), device, 0)[0]


class VideoBertPipeline:
    """One call from a video file (and text) to VideoBERT's outputs.

    ``model``: ``VideoBertForPretraining``; ``tokenizer``: ``WordPieceTokenizer`` of the model's text
    ids; ``tree``: the ``HierarchicalKMeans`` of its visual words; ``clip``: the ``ClipSpec`` of the
    features; ``s3d``: an ``S3DSource``; ``s3d_weights``: the weights file to use (default: the
    recorded path; not needed for random weights); ``captioner``: an optional ``Captioner`` trained
    on features of ``captioner_variant`` (see :meth:`set_captioner`).
    """

    def __init__(self, model: torch.nn.Module, tokenizer, tree, clip, s3d: S3DSource,
                 s3d_weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 captioner: torch.nn.Module | None = None, captioner_variant: str | None = None):
        if tree.num_words != model.config.num_visual_words:
            raise ValueError(f"the tree has {tree.num_words} visual words but the model has {model.config.num_visual_words}")
        if tokenizer.vocab_size != model.config.text_vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} ids but the model has {model.config.text_vocab_size}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer, self.tree, self.clip, self.s3d = tokenizer, tree, clip, s3d
        self._s3d_weights = s3d_weights
        self._s3d_model: torch.nn.Module | None = None
        self._clips: dict[tuple, "VideoClips"] = {}
        self.captioner: torch.nn.Module | None = None
        self.captioner_variant: str | None = None
        if captioner is not None:
            self.set_captioner(captioner, captioner_variant)

    def set_captioner(self, captioner: torch.nn.Module, variant: str | None = None) -> None:
        """Caption with ``captioner`` (a ``Captioner``) reading features of ``variant``; ``None``: the one
        variant whose width (S3D: the tree's dimension, videobert: 2 x hidden, videobert+s3d: both)
        is the captioner's input width. ``ValueError`` when no variant has that width, or several do."""
        from videobert.tasks.captioning.features import VARIANTS

        d, h2 = self.tree.dim, 2 * int(self.model.config.hidden_size)
        widths = {"s3d": d, "videobert": h2, "videobert+s3d": h2 + d}
        width = captioner.config.input_dim
        if variant is None:
            fitting = [v for v in VARIANTS if widths[v] == width]
            if len(fitting) != 1:
                raise ValueError(f"the captioner reads {width}-wide features; this pipeline's variants give {widths}: "
                                 + ("name its variant" if fitting else "it was trained on another model's features"))
            variant = fitting[0]
        if variant not in VARIANTS:
            raise ValueError(f"unknown captioning variant {variant!r}; choose from {', '.join(VARIANTS)}")
        if widths[variant] != width:
            raise ValueError(f"the captioner reads {width}-wide features but this pipeline's {variant} features are "
                             f"{widths[variant]} wide: it was trained on another model's or tree's features")
        self.captioner, self.captioner_variant = captioner.to(self.device).eval(), variant

    # ------------------------------------------------------------------ files
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the bundle (layout in the module docstring) into ``directory``."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        tokenizer_file = Path(self.tokenizer.path)
        tokenizer_bytes = tokenizer_file.read_bytes()  # read first: it may be this very directory's file
        tokenizer_name = "tokenizer.json" if tokenizer_file.suffix == ".json" else "vocab.txt"
        for name in ("vocab.txt", "tokenizer.json"):
            if name != tokenizer_name:
                (directory / name).unlink(missing_ok=True)
        with atomic_path(directory / tokenizer_name) as tmp:
            Path(tmp).write_bytes(tokenizer_bytes)
        self.tree.save(directory / TREE_FILE)
        if (directory / CAPTIONER_DIR).exists():  # another captioner's files never stay beside this bundle's
            shutil.rmtree(directory / CAPTIONER_DIR)
        captioner = None
        if self.captioner is not None:
            self.captioner.save_pretrained(directory / CAPTIONER_DIR)
            captioner = {"path": CAPTIONER_DIR, "variant": self.captioner_variant}
        write_json_atomic(directory / PIPELINE_FILE, {"format": FORMAT, "version": VERSION, "clip": asdict(self.clip),
                                                      "s3d": asdict(self.s3d), "tree": TREE_FILE, "captioner": captioner})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, s3d_weights: str | os.PathLike | None = None,
                        device: str | torch.device = "cpu") -> "VideoBertPipeline":
        """Read a bundle written by ``save_pretrained`` (or ``videobert export --pipeline``), with its
        captioner when it has one."""
        from videobert.models.videobert import VideoBertForPretraining
        from videobert.tasks.captioning import Captioner
        from videobert.text import WordPieceTokenizer
        from videobert.video.sampling import ClipSpec
        from videobert.visual_words import HierarchicalKMeans

        directory = Path(directory)
        path = directory / PIPELINE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory}: no {PIPELINE_FILE}; not a VideoBertPipeline bundle "
                                    f"(write one with `videobert export --pipeline` or save_pretrained)")
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ValueError(f"{path}: not a {FORMAT} version {VERSION} file")
        captioner = meta.get("captioner")
        return cls(VideoBertForPretraining.from_pretrained(directory), WordPieceTokenizer(directory),
                   HierarchicalKMeans.load(directory / meta["tree"]), ClipSpec(**meta["clip"]), S3DSource(**meta["s3d"]),
                   s3d_weights=s3d_weights, device=device,
                   captioner=Captioner.from_pretrained(directory / captioner["path"]) if captioner else None,
                   captioner_variant=captioner["variant"] if captioner else None)

    # ------------------------------------------------------------------ video -> words
    def _s3d(self) -> torch.nn.Module:
        if self._s3d_model is None:
            self._s3d_model = self.s3d.load(self._s3d_weights, self.device)
        return self._s3d_model

    def video_words(self, path: str | os.PathLike, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """A video file's visual words ``int64 [n]`` and clip times ``float64 [n, 2]`` (start, end s),
        one per clip, as the model's corpus was made (remembered per file, size and mtime)."""
        clips = self.video_clips(path, batch_size)
        return clips.words, clips.times

    @torch.inference_mode()
    def video_clips(self, path: str | os.PathLike, batch_size: int = 16) -> "VideoClips":
        """A video file's clips as the captioning task reads them (``videobert.tasks.captioning.VideoClips``:
        S3D features ``float32 [n, D]``, times ``[n, 2]``, visual words ``[n]``); remembered per file."""
        from videobert.tasks.captioning.data import VideoClips
        from videobert.video import read_raw_clips
        from videobert.video.preprocess import normalize_clips

        stat = os.stat(path)
        key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in self._clips:
            features, times = [], []
            clips = list(read_raw_clips(path, self.clip, backend="pyav"))
            for start in range(0, len(clips), batch_size):
                batch = clips[start : start + batch_size]
                frames = torch.from_numpy(np.stack([c.frames for c in batch])).to(self.device)
                features.append(self._s3d().embed(normalize_clips(frames)).float().cpu().numpy())
                times += [(c.start, c.end) for c in batch]
            if not features:
                raise ValueError(f"{path}: no clip could be decoded")
            features = np.concatenate(features)
            words = np.asarray(self.tree.assign(features), dtype=np.int64)
            self._clips[key] = VideoClips(features, np.asarray(times, dtype=np.float64).reshape(-1, 2), words)
        return self._clips[key]

    # ------------------------------------------------------------------ model outputs
    @property
    def scoring(self):
        """The model's task hooks (``videobert.models.videobert.scoring``)."""
        from videobert.models.videobert.scoring import VideoBertScoring

        return VideoBertScoring(self.model, self.tokenizer)

    def embed_video(self, path: str | os.PathLike) -> torch.Tensor:
        """Unit-length ``[H]`` embedding of the video alone (its ``[CLS]`` state, as two-tower retrieval)."""
        return self.scoring.embed_videos([self.video_words(path)[0]])[0].cpu()

    def embed_text(self, text: str) -> torch.Tensor:
        """Unit-length ``[H]`` embedding of the text alone (its ``[CLS]`` state, as two-tower retrieval)."""
        return self.scoring.embed_texts(self.tokenizer.encode_batch([text]))[0].cpu()

    def alignment_score(self, path: str | os.PathLike, text: str) -> float:
        """Probability in [0, 1] that ``text`` goes with the video (the alignment head on
        ``[CLS] text [>] video [SEP]``)."""
        zero = np.zeros(1, np.int64)
        logit = self.scoring.pair_logits(self.tokenizer.encode_batch([text]), [self.video_words(path)[0]], zero, zero)[0]
        return float(torch.sigmoid(torch.tensor(logit)))

    def zero_shot(self, path: str | os.PathLike, verbs: Sequence[str], objects: Sequence[str], top_k: int = 5
                  ) -> dict[str, list[tuple[str, float]]]:
        """The paper's zero-shot classification of the whole video ("now let me show you how to
        [MASK] the [MASK]"): ``{"verbs": [(verb, probability), ...], "objects": [...]}``, the
        ``top_k`` best of each, probabilities normalised over the given names."""
        from videobert.tasks.zero_shot import ZeroShotClassifier

        verb_scores, object_scores = ZeroShotClassifier(self.model, self.tokenizer, verbs, objects).score([self.video_words(path)[0]])

        def top(scores: torch.Tensor, names: Sequence[str]) -> list[tuple[str, float]]:
            probs = torch.softmax(scores[0].double(), dim=0)
            best = torch.argsort(probs, descending=True, stable=True)[:top_k]
            return [(names[i], float(probs[i])) for i in best.tolist()]

        return {"verbs": top(verb_scores, list(verbs)), "objects": top(object_scores, list(objects))}

    # ------------------------------------------------------------------ captioning
    def caption(self, path: str | os.PathLike, beam_size: int = 5, length_penalty: float = 0.0) -> str:
        """One caption of the whole video (its clips evenly subsampled to what the template leaves room for)."""
        return self.caption_segments(path, None, beam_size, length_penalty)[0].caption

    def caption_segments(self, path: str | os.PathLike, segment_clips: int | None = None, beam_size: int = 5,
                         length_penalty: float = 0.0) -> list[TimedCaption]:
        """A caption per segment of ``segment_clips`` consecutive clips (the last one may be shorter;
        ``None``: the whole video is one segment), in time order. Each segment is captioned as
        ``videobert eval caption`` captions an annotated segment: its clips evenly subsampled to
        the template's ``max_clips`` for the VideoBERT variants, ``variant_inputs`` of its S3D features
        and template outputs, beam search of width ``beam_size`` (1: greedy) ranked by
        log-probability / length ** ``length_penalty``."""
        from videobert.tasks.captioning.features import variant_inputs
        from videobert.tasks.inputs import subsample_evenly

        if self.captioner is None:
            raise RuntimeError(NO_CAPTIONER)
        if segment_clips is not None and segment_clips < 1:
            raise ValueError(f"segment_clips must be at least 1 (or None for the whole video), got {segment_clips}")
        clips = self.video_clips(path)
        encoder = self.scoring if self.captioner_variant != "s3d" else None
        max_clips = encoder.max_feature_clips if encoder else sys.maxsize
        n = len(clips.words)
        step = segment_clips or n
        spans = [np.arange(start, min(start + step, n)) for start in range(0, n, step)]
        rows = [subsample_evenly(span, max_clips) for span in spans]
        videobert = encoder.clip_features([clips.words[r] for r in rows]) if encoder else None
        inputs = variant_inputs(self.captioner_variant, [clips.features[r] for r in rows], videobert)
        captions = self.captioner.generate(inputs, beam_size, length_penalty=length_penalty)
        return [TimedCaption(float(clips.times[span[0], 0]), float(clips.times[span[-1], 1]), caption)
                for span, caption in zip(spans, captions)]
