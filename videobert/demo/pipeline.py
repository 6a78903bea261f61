"""`videobert demo`: the whole pipeline on built-in synthetic data, as resumable stages.

    generate -> extract -> visual_words -> corpus -> pretrain -> evaluate -> caption -> pictures -> report

Every stage calls the library's own components (PyAV decoding, S3D, hierarchical k-means,
WebVTT + sentences + WordPiece, the corpus, DeepSpeed pretraining, zero-shot classification).
Output directory layout::

    data/            synthetic videos, transcripts, held-out annotations, vocabularies
    features/        S3D features (train/ and heldout/, `videobert extract` layout)
    visual_words/    kmeans.safetensors, words.npz (every video's words and clip times)
    corpus/          the pretraining corpus
    pretrain/        DeepSpeed run: checkpoints/, tensorboard/, metrics.jsonl, model/ (trained model)
    pipeline/        the trained model as a VideoBertPipeline bundle (videobert.pipeline)
    eval/            zero_shot.json, alignment.json, retrieval.json, captioning/ (captions, metrics, captions.png)
    pictures/        loss_curves.png, zero_shot.png, retrieval.png, visual-word galleries
    report.json      accuracies beside chance, each stage's wall time
    stages.jsonl     which stages finished (a rerun skips them)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videobert.demo.config import DemoConfig
from videobert.demo.stages import Stage, run_stages
from videobert.utils.io import atomic_path, write_json_atomic
from videobert.utils.stopping import Stopped

if TYPE_CHECKING:
    from videobert.train import TrainResult
    from videobert.train.config import ModelConfig

log = logging.getLogger(__name__)

OUTPUTS = ("data", "features", "visual_words", "corpus", "pretrain", "pipeline", "eval", "pictures", "report.json", "stages.jsonl", "demo_config.json")


class DemoPipeline:
    def __init__(self, out_dir: str | os.PathLike, config: DemoConfig):
        from videobert.models import get_family

        self.out = Path(out_dir)
        self.config = config
        self.hooks = get_family(config.family).demo_hooks()  # what the model family adds (family_hooks.py)
        self.data = self.out / "data"
        self.features = self.out / "features"
        self.words_dir = self.out / "visual_words"
        self.kmeans_path = self.words_dir / "kmeans.safetensors"
        self.words_path = self.words_dir / "words.npz"
        self.corpus_dir = self.out / "corpus"
        self.run_dir = self.out / "pretrain"
        self.eval_dir = self.out / "eval"
        self.pictures = self.out / "pictures"

    def stages(self) -> list[Stage]:
        c = self.config
        return [
            Stage("generate", self.generate, f"render and encode {c.data.n_train} training and {c.data.n_heldout} held-out videos"),
            Stage("extract", self.extract, f"decode at {c.fps} fps, S3D features of {c.clip_frames}-frame clips at {c.frame_size} px"),
            Stage("visual_words", self.visual_words, f"hierarchical k-means, {c.levels} levels x {c.branching} = {c.num_visual_words} words"),
            Stage("corpus", self.corpus, "transcripts -> sentences -> WordPiece; segments of visual words"),
            *self.hooks.extra_stages(self),
            Stage("pretrain", self.pretrain, self.hooks.pretrain_description(c)),
            Stage("evaluate", self.evaluate, "zero-shot verb / object classification, alignment and retrieval on the held-out split"),
            Stage("caption", self.caption, f"captioners (s3d, {c.family}, {c.family}+s3d features; {len(c.caption_seeds)} "
                                           "seed(s) each) trained on the training videos' annotations, COCO metrics on the held-out ones"),
            Stage("pictures", self.pictures_stage, "loss curves, zero-shot bars, retrieval, visual-word galleries"),
        ]

    # ------------------------------------------------------------------ stages
    def generate(self) -> dict[str, Any]:
        from videobert.demo.synthetic import generate_dataset

        data = generate_dataset(self.data, self.config.data)
        train = [s for s in data.scripts if s.split == "train"]
        heldout = [s for s in data.scripts if s.split == "heldout"]
        return {
            "train_videos": len(train), "heldout_videos": len(heldout),
            "untranscribed_train_videos": sum(not s.has_transcript for s in train),
            "video_seconds": round(sum(s.duration for s in data.scripts), 1),
            "heldout_segments": sum(len(s.segments) for s in heldout),
            "codecs": sorted({s.codec for s in data.scripts}), "frame_rates": sorted({s.fps for s in data.scripts}),
            "frame_sizes": sorted({f"{s.width}x{s.height}" for s in data.scripts}),
        }

    def extract(self) -> dict[str, Any]:
        from videobert.demo.adapters import extract_features

        summary = {}
        for split in ("train", "heldout"):
            summary[split] = extract_features(
                self.data / split / "videos", self.features / split, weights=self.config.s3d_weights or None,
                size=self.config.frame_size, fps=self.config.fps, clip_frames=self.config.clip_frames, seed=self.config.seed,
            )
        return summary

    def visual_words(self) -> dict[str, Any]:
        from videobert.features.store import iter_video_features, load_feature_matrix
        from videobert.visual_words import HierarchicalKMeans

        c = self.config
        matrix = np.asarray(load_feature_matrix(self.features / "train"), dtype=np.float32)
        kmeans = HierarchicalKMeans(levels=c.levels, branching=c.branching, seed=c.seed)
        kmeans.fit(matrix)
        kmeans.save(self.kmeans_path)  # atomic
        arrays: dict[str, np.ndarray] = {}
        for split in ("train", "heldout"):
            for video_id, features, times in iter_video_features(self.features / split):
                arrays[f"{video_id}/words"] = np.asarray(kmeans.assign(np.asarray(features, dtype=np.float32)), dtype=np.int64)
                arrays[f"{video_id}/times"] = np.asarray(times, dtype=np.float64)
        with atomic_path(self.words_path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        used = np.unique(np.concatenate([v for k, v in arrays.items() if k.endswith("/words")]))
        return {"train_clips": int(matrix.shape[0]), "feature_dim": int(matrix.shape[1]),
                "videos": len(arrays) // 2, "words_used": int(used.size), "words_possible": c.num_visual_words}

    def video_words(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``video_id -> (words [n], clip times [n, 2])`` for every video, as the tasks take them."""
        with np.load(self.words_path) as arrays:
            ids = sorted({key.rsplit("/", 1)[0] for key in arrays.files})
            return {i: (arrays[f"{i}/words"], arrays[f"{i}/times"]) for i in ids}

    def corpus(self) -> dict[str, Any]:
        from videobert.demo.adapters import build_demo_corpus

        train = {k: v for k, v in self.video_words().items() if k.startswith("train_")}
        return build_demo_corpus(self.corpus_dir, train, self.data / "train" / "transcripts", self.tokenizer(),
                                 seed=self.config.seed, num_visual_words=self.config.num_visual_words)

    def tokenizer(self):
        """WordPiece over the demo's own vocabulary (``data/vocab.txt``, written by ``generate``)."""
        from videobert.text import WordPieceTokenizer

        return WordPieceTokenizer(self.data / "vocab.txt")

    def pretrain(self) -> dict[str, Any]:
        return self.hooks.pretrain(self)

    def train(self, model: "ModelConfig", out: Path | None = None, family_data: dict[str, Any] | None = None,
              **settings: Any) -> tuple["TrainResult", int]:
        """Pretrain ``model`` (its ``family`` picks the model family) on the demo's corpus with the demo's
        settings, on DeepSpeed with ``config.num_ranks`` CPU ranks; ``out`` (default ``pretrain/``),
        ``family_data`` (``TrainConfig.data.family``) and ``settings`` (other ``TrainConfig`` fields,
        e.g. ``steps``, ``optimizer``, ``schedule``, ``data``) replace the demo's. Returns the result and
        the number of ranks; raises when no model was exported."""
        from videobert.models import get_family
        from videobert.train import TrainConfig, launch, pretrain
        from videobert.train.config import DataConfig, OptimizerConfig, ScheduleConfig

        c = self.config
        num_ranks = c.num_ranks if (os.cpu_count() or 1) >= c.num_ranks else 1
        steps = settings.get("steps", c.steps)
        defaults = dict(
            out=str(out or self.run_dir), seed=c.seed, steps=steps, batch_size=c.batch_size, micro_batch_size=c.micro_batch_size,
            deepspeed="zero2", precision="auto", log_every=5, eval_every=0, save_every=steps, keep_checkpoints=1,
            progress=False, data=DataConfig(corpus=str(self.corpus_dir), eval_split="", max_length=c.max_length,
                            stream_weights=list(c.stream_weights), negative_rate=c.negative_rate, mask_prob=c.mask_prob,
                            concat_prob=c.concat_prob, max_stride=c.max_stride, family=dict(family_data or {}),
                            pack_sequences=c.pack_sequences and get_family(model.family).packs_sequences),
            optimizer=OptimizerConfig(lr=c.lr), schedule=ScheduleConfig(warmup_steps=c.warmup_steps, decay="linear"),
        )
        config = TrainConfig(**{**defaults, **settings, "model": model})
        if num_ranks > 1:
            # one thread per rank: two ranks on two cores must not oversubscribe them
            result = launch(config, num_procs=num_ranks, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        else:
            result = pretrain(config)
        if result.stopped in ("sigterm", "sigint"):
            # the in-process run caught the signal to checkpoint first; the stage stops as a stop, not a failure
            raise Stopped(signal.SIGTERM if result.stopped == "sigterm" else signal.SIGINT)
        if not result.model_dir:
            raise RuntimeError(f"pretraining ended ({result.stopped} at step {result.step}) without exporting a model")
        return result, num_ranks

    def trained_model(self):
        """The model the ``pretrain`` stage exported (any family) and its task hooks with every video's clips."""
        from videobert.models import load_model

        model = load_model(self.out / self._stage_result("pretrain")["model_dir"])
        return model, *self.hooks.scoring(self, model)

    def evaluate(self) -> dict[str, Any]:
        """Zero-shot classification on the annotated held-out segments; alignment and retrieval on the
        same segments with the narration spoken during each (``narrated``) as their text. The model
        learnt alignment from narration only and has never read an annotator's imperative caption
        ("spin the red square"), so the narration asks what it was taught; the command
        (``videobert eval retrieval``) takes the annotations unless given ``--transcripts``."""
        from videobert.tasks.alignment import alignment_accuracy, narrated
        from videobert.tasks.annotations import read_word_list, read_youcook_annotations
        from videobert.tasks.retrieval import evaluate_retrieval
        from videobert.tasks.zero_shot import ZeroShotClassifier

        _, scoring, clips = self.trained_model()
        tokenizer = self.tokenizer()
        verbs, objects = read_word_list(self.data / "verbs.txt"), read_word_list(self.data / "objects.txt")
        segments = read_youcook_annotations(self.data / "heldout" / "annotations.json")
        zero_shot = ZeroShotClassifier(scoring, tokenizer, verbs, objects).evaluate(segments, clips)
        write_json_atomic(self.eval_dir / "zero_shot.json", zero_shot.to_dict())
        narration = narrated(segments, self.data / "heldout" / "transcripts")
        alignment = alignment_accuracy(scoring, tokenizer, narration, clips, seed=self.config.seed)
        write_json_atomic(self.eval_dir / "alignment.json", alignment)
        retrieval = {**evaluate_retrieval(scoring, tokenizer, narration, clips), "text": "narration"}
        write_json_atomic(self.eval_dir / "retrieval.json", retrieval)

        def summary(reports: dict, classes: int) -> dict[str, float | None]:
            prior = reports.get("prior")  # none for prompt-embedding zero-shot
            return {"top1": reports["video"].top1, "top5": reports["video"].top5,
                    "chance_top1": 1 / classes, "chance_top5": min(5, classes) / classes,
                    "prior_top1": prior.top1 if prior else None, "prior_top5": prior.top5 if prior else None,
                    "mean_class_top1": reports["video"].mean_class_top1}

        return {"verb": summary(zero_shot.verb, len(verbs)), "object": summary(zero_shot.object, len(objects)),
                "method": zero_shot.method, "segments": zero_shot.num_segments, "skipped": zero_shot.skipped,
                "alignment": alignment,
                "retrieval": {key: retrieval[key] for key in ("mode", "k", "text", "text_to_video", "video_to_text",
                                                              "segments", "sentences", "duplicate_segments", "seconds")}}

    def caption(self) -> dict[str, Any]:
        """The paper's captioning protocol (``videobert.tasks.captioning``): per feature variant (S3D, the
        family's clip features, both) and seed a captioner trained on the training videos' annotations,
        scored on the held-out segments."""
        from dataclasses import replace

        from videobert.tasks.annotations import read_youcook_annotations
        from videobert.tasks.captioning import CaptioningSettings, load_video_clips, run_captioning
        from videobert.visual_words import HierarchicalKMeans

        c = self.config
        settings = CaptioningSettings(seeds=tuple(c.caption_seeds), beam_size=c.caption_beam_size)
        settings.train = replace(settings.train, steps=c.caption_steps)
        _, scoring, table = self.trained_model()
        clips = load_video_clips([self.features / "train", self.features / "heldout"], HierarchicalKMeans.load(self.kmeans_path))
        # the family reads a clip by its own id (VideoBERT: its visual word; others: a row of their store)
        for video_id, video in clips.items():
            if video_id in table and len(table[video_id][0]) != len(video.times):
                raise ValueError(f"{video_id}: the family's clip table has {len(table[video_id][0])} clips, "
                                 f"the S3D features {len(video.times)}")
        clips = {video_id: video._replace(words=np.asarray(table[video_id][0], dtype=np.int64))
                 for video_id, video in clips.items() if video_id in table}
        metrics = run_captioning(scoring, self.tokenizer(), clips,
                                 read_youcook_annotations(self.data / "train" / "annotations.json"),
                                 read_youcook_annotations(self.data / "heldout" / "annotations.json"),
                                 self.eval_dir / "captioning", settings, videos_dirs=[self.data / "heldout" / "videos"])
        self.hooks.captioned(self)
        variants = metrics["settings"]["variants"]
        return {key: metrics[key] for key in (*variants, "most_common_caption", "segments", "skipped", "training",
                                              "seconds", "settings")}

    def pictures_stage(self) -> dict[str, Any]:
        from videobert.demo.pictures import draw_galleries, plot_loss_curves, plot_zero_shot
        from videobert.tasks.plots import plot_zero_shot_per_class
        from videobert.tasks.retrieval.plots import plot_retrieval

        evaluation = self._stage_result("evaluate")
        zero_shot = json.loads((self.eval_dir / "zero_shot.json").read_text(encoding="utf-8"))
        paths = {
            "loss_curves": plot_loss_curves(self.run_dir, self.pictures / "loss_curves.png", self.hooks.curve_keys),
            "zero_shot": plot_zero_shot(evaluation, self.pictures / "zero_shot.png"),
            "zero_shot_per_class": plot_zero_shot_per_class(zero_shot, self.pictures / "zero_shot_per_class.png"),
        }
        retrieval = json.loads((self.eval_dir / "retrieval.json").read_text(encoding="utf-8"))
        paths["retrieval"] = plot_retrieval(retrieval, self.pictures / "retrieval.png", self.data / "heldout" / "videos")
        paths.update(draw_galleries(self, self.pictures))
        return {name: str(Path(p).relative_to(self.out)) for name, p in paths.items()}

    # ------------------------------------------------------------------ running
    def _stage_result(self, name: str) -> dict[str, Any]:
        from videobert.utils.manifest import Manifest

        record = Manifest(self.out / "stages.jsonl").records.get(name)
        if not record or record.get("status") != "done":
            raise RuntimeError(f"stage '{name}' has not finished")
        return record["result"]

    def check_config(self, fresh: bool) -> None:
        """Start over on ``fresh``; refuse to resume a run made with a different configuration
        (``demo_config.json`` is the run's fingerprint: the error names each changed setting)."""
        from videobert.utils.fingerprint import claim_output

        config_path = self.out / "demo_config.json"

        def clear() -> None:
            for name in (*OUTPUTS, *self.hooks.outputs):
                path = self.out / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists() and path != config_path:
                    path.unlink()

        settings = {**dataclasses.asdict(self.config), "family_settings": self.hooks.settings(self.config)}
        claim_output(config_path, "demo", settings, overwrite=fresh, clear=clear, restart_hint="--fresh")

    def run(self, fresh: bool = False) -> dict[str, Any]:
        """Run (or resume) every stage and write ``report.json``; returns the report."""
        from videobert.demo.report import build_report

        started = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        self.check_config(fresh)
        outcomes = run_stages(self.stages(), self.out / "stages.jsonl")
        report = build_report(self, outcomes, time.perf_counter() - started)
        write_json_atomic(self.out / "report.json", report)
        return report
