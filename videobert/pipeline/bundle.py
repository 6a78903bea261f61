"""``VideoBertPipeline``: a pretrained VideoBERT with everything that turns a video file into its
input, in one directory (Hugging Face Hub style) that ``from_pretrained`` reads.

Bundle layout::

    pipeline.json            format, clip spec (fps, clip frames, size, partial), S3D weights
                             (SHA-256 and the path they were read from, or the seed of random ones)
    config.json              the VideoBERT model config        } VideoBertForPretraining.save_pretrained
    model.safetensors        its weights                        }
    vocab.txt | tokenizer.json  the WordPiece tokenizer the model's text ids come from
    visual_words.safetensors the hierarchical k-means tree (HierarchicalKMeans.save)

The S3D weights themselves (32 MB, torchvision's licence) are not copied: the bundle records their
digest, and ``from_pretrained`` checks the file it is given (or the recorded path) against it.
A video goes through exactly the extraction the model was trained on: ``read_raw_clips`` with the
bundle's clip spec, ``normalize_clips``, S3D with BatchNorm folded, then the tree.

Captioning (``caption(path)``) is not here yet: the captioning task is being built separately.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from videobert.utils.io import atomic_path, write_json_atomic

FORMAT = "videobert-pipeline"
VERSION = 1
PIPELINE_FILE = "pipeline.json"
TREE_FILE = "visual_words.safetensors"


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
    recorded path; not needed for random weights).
    """

    def __init__(self, model: torch.nn.Module, tokenizer, tree, clip, s3d: S3DSource,
                 s3d_weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
        if tree.num_words != model.config.num_visual_words:
            raise ValueError(f"the tree has {tree.num_words} visual words but the model has {model.config.num_visual_words}")
        if tokenizer.vocab_size != model.config.text_vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} ids but the model has {model.config.text_vocab_size}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer, self.tree, self.clip, self.s3d = tokenizer, tree, clip, s3d
        self._s3d_weights = s3d_weights
        self._s3d_model: torch.nn.Module | None = None
        self._words: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ files
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the bundle (layout in the module docstring) into ``directory``."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        tokenizer_file = Path(self.tokenizer.path)
        for name in ("vocab.txt", "tokenizer.json"):
            (directory / name).unlink(missing_ok=True)
        with atomic_path(directory / ("tokenizer.json" if tokenizer_file.suffix == ".json" else "vocab.txt")) as tmp:
            shutil.copyfile(tokenizer_file, tmp)
        self.tree.save(directory / TREE_FILE)
        write_json_atomic(directory / PIPELINE_FILE, {"format": FORMAT, "version": VERSION, "clip": asdict(self.clip),
                                                      "s3d": asdict(self.s3d), "tree": TREE_FILE})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, s3d_weights: str | os.PathLike | None = None,
                        device: str | torch.device = "cpu") -> "VideoBertPipeline":
        """Read a bundle written by ``save_pretrained`` (or ``videobert export --pipeline``)."""
        from videobert.model import VideoBertForPretraining
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
        return cls(VideoBertForPretraining.from_pretrained(directory), WordPieceTokenizer(directory),
                   HierarchicalKMeans.load(directory / meta["tree"]), ClipSpec(**meta["clip"]), S3DSource(**meta["s3d"]),
                   s3d_weights=s3d_weights, device=device)

    # ------------------------------------------------------------------ video -> words
    def _s3d(self) -> torch.nn.Module:
        if self._s3d_model is None:
            self._s3d_model = self.s3d.load(self._s3d_weights, self.device)
        return self._s3d_model

    @torch.inference_mode()
    def video_words(self, path: str | os.PathLike, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """A video file's visual words ``int64 [n]`` and clip times ``float64 [n, 2]`` (start, end s),
        one per clip, as the model's corpus was made (remembered per file, size and mtime)."""
        from videobert.video import read_raw_clips
        from videobert.video.preprocess import normalize_clips

        stat = os.stat(path)
        key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in self._words:
            features, times = [], []
            clips = list(read_raw_clips(path, self.clip, backend="pyav"))
            for start in range(0, len(clips), batch_size):
                batch = clips[start : start + batch_size]
                frames = torch.from_numpy(np.stack([c.frames for c in batch])).to(self.device)
                features.append(self._s3d().embed(normalize_clips(frames)).float().cpu().numpy())
                times += [(c.start, c.end) for c in batch]
            if not features:
                raise ValueError(f"{path}: no clip could be decoded")
            words = np.asarray(self.tree.assign(np.concatenate(features)), dtype=np.int64)
            self._words[key] = (words, np.asarray(times, dtype=np.float64).reshape(-1, 2))
        return self._words[key]

    # ------------------------------------------------------------------ model outputs
    def embed_video(self, path: str | os.PathLike) -> torch.Tensor:
        """Unit-length ``[H]`` embedding of the video alone (mean hidden state over its visual words)."""
        from videobert.tasks.retrieval.scorers import TwoTower

        return TwoTower(self.model).embed_videos([self.video_words(path)[0]])[0].cpu()

    def embed_text(self, text: str) -> torch.Tensor:
        """Unit-length ``[H]`` embedding of the text alone (mean hidden state over its WordPieces)."""
        from videobert.tasks.retrieval.scorers import TwoTower

        return TwoTower(self.model).embed_texts(self.tokenizer.encode_batch([text]))[0].cpu()

    def alignment_score(self, path: str | os.PathLike, text: str) -> float:
        """Probability in [0, 1] that ``text`` goes with the video (the alignment head on
        ``[CLS] text [>] video [SEP]``)."""
        from videobert.tasks.retrieval.scorers import CrossEncoder, PairTables

        tables = PairTables.build(self.model, self.tokenizer.encode_batch([text]), [self.video_words(path)[0]])
        logit = CrossEncoder(self.model).score_pairs(tables, np.zeros(1, np.int64), np.zeros(1, np.int64))[0]
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
