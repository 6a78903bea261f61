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
import time
from pathlib import Path
from typing import Any

import numpy as np

from videobert.demo.config import DemoConfig
from videobert.demo.stages import Stage, run_stages
from videobert.utils.io import atomic_path, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

OUTPUTS = ("data", "features", "visual_words", "corpus", "pretrain", "pipeline", "eval", "pictures", "report.json", "stages.jsonl", "demo_config.json")


class DemoPipeline:
    def __init__(self, out_dir: str | os.PathLike, config: DemoConfig):
        self.out = Path(out_dir)
        self.config = config
        self.data = self.out / "data"
        self.features = self.out / "features"
        self.words_dir = self.out / "visual_words"
        self.kmeans_path = self.words_dir / "kmeans.safetensors"
        self.words_path = self.words_dir / "words.npz"
        self.corpus_dir = self.out / "corpus"
        self.run_dir = self.out / "pretrain"
        self.model_dir = self.run_dir / "model"
        self.eval_dir = self.out / "eval"
        self.pictures = self.out / "pictures"

    def stages(self) -> list[Stage]:
        c = self.config
        return [
            Stage("generate", self.generate, f"render and encode {c.data.n_train} training and {c.data.n_heldout} held-out videos"),
            Stage("extract", self.extract, f"decode at {c.fps} fps, S3D features of {c.clip_frames}-frame clips at {c.frame_size} px"),
            Stage("visual_words", self.visual_words, f"hierarchical k-means, {c.levels} levels x {c.branching} = {c.num_visual_words} words"),
            Stage("corpus", self.corpus, "transcripts -> sentences -> WordPiece; segments of visual words"),
            Stage("pretrain", self.pretrain, f"{c.steps} steps on DeepSpeed ({c.num_ranks} CPU rank(s))"),
            Stage("evaluate", self.evaluate, "zero-shot verb / object classification, alignment and retrieval on the held-out split"),
            Stage("caption", self.caption, f"captioners (s3d, videobert, videobert+s3d features; {len(c.caption_seeds)} seed(s) "
                                           "each) trained on the training videos' annotations, COCO metrics on the held-out ones"),
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
        import torch

        from videobert.model import VideoBertConfig, VideoBertForPretraining
        from videobert.model.config import LossWeights
        from videobert.train import TrainConfig, launch, pretrain
        from videobert.train.config import DataConfig, ModelConfig, OptimizerConfig, ScheduleConfig
        from videobert.utils.seed import seed_everything
        from videobert.visual_words import HierarchicalKMeans

        c = self.config
        seed_everything(c.seed)
        # The visual-word embeddings start from the words' S3D centroids (as in the paper); the
        # initial model is saved and the run starts from it.
        tokenizer = self.tokenizer()
        model = VideoBertForPretraining(VideoBertConfig.tiny(
            text_vocab_size=tokenizer.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
            num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
            max_position_embeddings=c.max_length, num_visual_words=c.num_visual_words,
            visual_projection=c.visual_projection, loss_weights=LossWeights(alignment=c.alignment_loss_weight)))
        kmeans = HierarchicalKMeans.load(self.kmeans_path)
        model.init_visual_embeddings(torch.as_tensor(np.asarray(kmeans.leaf_centroids), dtype=torch.float32), seed=c.seed)
        init_dir = self.run_dir / "initial_model"
        model.save_pretrained(init_dir)
        num_ranks = c.num_ranks if (os.cpu_count() or 1) >= c.num_ranks else 1
        config = TrainConfig(
            out=str(self.run_dir), seed=c.seed, steps=c.steps, batch_size=c.batch_size, micro_batch_size=c.micro_batch_size,
            deepspeed="zero2", precision="auto", log_every=5, eval_every=0, save_every=c.steps, keep_checkpoints=1,
            progress=False, data=DataConfig(corpus=str(self.corpus_dir), eval_split="", max_length=c.max_length,
                            stream_weights=list(c.stream_weights), negative_rate=c.negative_rate, mask_prob=c.mask_prob,
                            concat_prob=c.concat_prob, max_stride=c.max_stride),
            model=ModelConfig(init_from=str(init_dir)), optimizer=OptimizerConfig(lr=c.lr),
            schedule=ScheduleConfig(warmup_steps=c.warmup_steps, decay="linear"),
        )
        if num_ranks > 1:
            # one thread per rank: two ranks on two cores must not oversubscribe them
            result = launch(config, num_procs=num_ranks, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        else:
            result = pretrain(config)
        if not result.model_dir:
            raise RuntimeError(f"pretraining ended ({result.stopped} at step {result.step}) without exporting a model")
        # the model reads the demo's text ids: its vocabulary goes with it (`videobert eval` finds it there)
        write_text_atomic(Path(result.model_dir) / "vocab.txt", tokenizer.path.read_text(encoding="utf-8"))
        self.write_bundle(Path(result.model_dir), kmeans)
        return {"ranks": num_ranks, "steps": result.step, "final_loss": result.loss, "tokens_per_s": result.tokens_per_s,
                "model_dir": str(Path(result.model_dir).resolve().relative_to(self.out.resolve()))}

    def write_bundle(self, model_dir: Path, kmeans) -> Path:
        """The trained model as a ``VideoBertPipeline`` bundle in ``pipeline/``: one call from a
        video file to its visual words, embeddings, alignment and zero-shot classes."""
        from videobert.model import VideoBertForPretraining
        from videobert.pipeline import S3DSource, VideoBertPipeline
        from videobert.video import ClipSpec

        c = self.config
        clip = ClipSpec(fps=c.fps, clip_frames=c.clip_frames, size=c.frame_size)
        pipeline = VideoBertPipeline(VideoBertForPretraining.from_pretrained(model_dir), self.tokenizer(), kmeans, clip,
                                     S3DSource.of(c.s3d_weights or None, c.seed), c.s3d_weights or None)
        return pipeline.save_pretrained(self.out / "pipeline")

    def evaluate(self) -> dict[str, Any]:
        """Zero-shot classification on the annotated held-out segments; alignment and retrieval on the
        same segments with the narration spoken during each (``narrated``) as their text. The model
        learnt alignment from narration only and has never read an annotator's imperative caption
        ("spin the red square"), so the narration asks what it was taught; the command
        (``videobert eval retrieval``) takes the annotations unless given ``--transcripts``."""
        from videobert.model import VideoBertForPretraining
        from videobert.tasks.alignment import alignment_accuracy, narrated
        from videobert.tasks.annotations import read_word_list, read_youcook_annotations
        from videobert.tasks.retrieval import evaluate_retrieval
        from videobert.tasks.zero_shot import ZeroShotClassifier

        model = VideoBertForPretraining.from_pretrained(self.model_dir)
        tokenizer = self.tokenizer()
        verbs, objects = read_word_list(self.data / "verbs.txt"), read_word_list(self.data / "objects.txt")
        segments = read_youcook_annotations(self.data / "heldout" / "annotations.json")
        video_words = self.video_words()
        zero_shot = ZeroShotClassifier(model, tokenizer, verbs, objects).evaluate(segments, video_words)
        write_json_atomic(self.eval_dir / "zero_shot.json", zero_shot.to_dict())
        narration = narrated(segments, self.data / "heldout" / "transcripts")
        alignment = alignment_accuracy(model, tokenizer, narration, video_words, seed=self.config.seed)
        write_json_atomic(self.eval_dir / "alignment.json", alignment)
        retrieval = {**evaluate_retrieval(model, tokenizer, narration, video_words), "text": "narration"}
        write_json_atomic(self.eval_dir / "retrieval.json", retrieval)

        def summary(reports: dict, classes: int) -> dict[str, float]:
            return {"top1": reports["video"].top1, "top5": reports["video"].top5,
                    "chance_top1": 1 / classes, "chance_top5": min(5, classes) / classes,
                    "prior_top1": reports["prior"].top1, "prior_top5": reports["prior"].top5,
                    "mean_class_top1": reports["video"].mean_class_top1}

        return {"verb": summary(zero_shot.verb, len(verbs)), "object": summary(zero_shot.object, len(objects)),
                "segments": zero_shot.num_segments, "skipped": zero_shot.skipped, "alignment": alignment,
                "retrieval": {key: retrieval[key] for key in ("mode", "k", "text", "text_to_video", "video_to_text",
                                                              "segments", "sentences", "duplicate_segments", "seconds")}}

    def caption(self) -> dict[str, Any]:
        """The paper's captioning protocol (``videobert.tasks.captioning``): per feature variant and seed a
        captioner trained on the training videos' annotations, scored on the held-out segments. The
        first seed's videobert+s3d captioner then joins the bundle in ``pipeline/`` (``caption(path)``)."""
        from dataclasses import replace

        from videobert.model import VideoBertForPretraining
        from videobert.pipeline import VideoBertPipeline
        from videobert.tasks.annotations import read_youcook_annotations
        from videobert.tasks.captioning import Captioner, CaptioningSettings, load_video_clips, run_captioning
        from videobert.visual_words import HierarchicalKMeans

        c = self.config
        settings = CaptioningSettings(seeds=tuple(c.caption_seeds), beam_size=c.caption_beam_size)
        settings.train = replace(settings.train, steps=c.caption_steps)
        clips = load_video_clips([self.features / "train", self.features / "heldout"], HierarchicalKMeans.load(self.kmeans_path))
        metrics = run_captioning(VideoBertForPretraining.from_pretrained(self.model_dir), self.tokenizer(), clips,
                                 read_youcook_annotations(self.data / "train" / "annotations.json"),
                                 read_youcook_annotations(self.data / "heldout" / "annotations.json"),
                                 self.eval_dir / "captioning", settings, videos_dirs=[self.data / "heldout" / "videos"])
        bundle = VideoBertPipeline.from_pretrained(self.out / "pipeline")
        bundle.set_captioner(Captioner.from_pretrained(self.eval_dir / "captioning" / "captioners" / "videobert+s3d"),
                             "videobert+s3d")
        bundle.save_pretrained(self.out / "pipeline")
        return {key: metrics[key] for key in ("s3d", "videobert", "videobert+s3d", "most_common_caption", "segments",
                                              "skipped", "training", "seconds", "settings")}

    def pictures_stage(self) -> dict[str, Any]:
        from videobert.demo.pictures import draw_galleries, plot_loss_curves, plot_zero_shot
        from videobert.tasks.plots import plot_zero_shot_per_class
        from videobert.tasks.retrieval.plots import plot_retrieval

        evaluation = self._stage_result("evaluate")
        zero_shot = json.loads((self.eval_dir / "zero_shot.json").read_text(encoding="utf-8"))
        paths = {
            "loss_curves": plot_loss_curves(self.run_dir, self.pictures / "loss_curves.png"),
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
            for name in OUTPUTS:
                path = self.out / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists() and path != config_path:
                    path.unlink()

        claim_output(config_path, "demo", dataclasses.asdict(self.config), overwrite=fresh, clear=clear, restart_hint="--fresh")

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
