"""``videobert pipeline``: a folder of videos (and transcripts) -> a pretrained ``VideoBertPipeline``,
as the demo's resumable stages (``videobert.demo.stages``)::

    extract -> visual_words -> corpus -> pretrain -> export [-> zero_shot]

Each stage is the library's own command as a function, with its fingerprint. A rerun with the same
settings and input files resumes finished stages and the unfinished stage's own progress; other
settings or files are refused, naming what changed (``--overwrite`` starts over). Output directory::

    features/                   `videobert extract` output
    visual_words.safetensors    the tree (`videobert visual-words fit`)
    corpus/                     `videobert corpus build` output
    pretrain/                   the DeepSpeed run (`videobert pretrain`)
    pipeline/                   the VideoBertPipeline bundle (`videobert export --pipeline`)
    zero_shot.json              each video's top verbs and objects (when the config lists them)
    stages.jsonl                which stages finished
    pipeline_fingerprint.json   the settings and input files the stages were run for
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videobert.demo.stages import Stage, run_stages
from videobert.utils.io import write_json_atomic

OUTPUTS = ("features", "visual_words.safetensors", "visual_words.safetensors.fingerprint.json", "corpus", "pretrain",
           "pipeline", "zero_shot.json", "stages.jsonl")  # what --overwrite deletes


@dataclass
class OwnVideosConfig:
    """Settings of ``videobert pipeline`` (a YAML/JSON ``--config`` file and ``key=value`` overrides)."""

    weights: str = ""                # torchvision's s3d-d76dad2f.pth; "" needs random_weights
    random_weights: bool = False     # random S3D (features for tests only)
    size: int = 224                  # clip side in pixels
    fps: float = 20.0
    clip_frames: int = 30
    workers: int = 2                 # decoding processes
    levels: int = 4                  # tree: levels x branching (20,736 words by default; 2 x 3 for a handful of videos)
    branching: int = 12
    heldout_fraction: float = 0.05
    max_pause: float = 1.0
    max_sentence_words: int = 40
    tokenizer: str = ""              # "" = BERT's uncased WordPiece files shipped offline
    pretrain: str = "tiny"           # a TrainConfig preset (tiny, paper) or YAML/JSON file
    pretrain_overrides: list[str] = field(default_factory=list)  # e.g. ["steps=1000"]
    seed: int = 0
    verbs: list[str] = field(default_factory=list)    # with objects: zero-shot report of every video
    objects: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.weights = os.path.expanduser(self.weights)
        if bool(self.weights) == self.random_weights:
            from videobert.features.weights import TORCHVISION_FILE, TORCHVISION_URL

            raise ValueError(f"pipeline: set weights (torchvision's S3D_Weights.KINETICS400_V1, {TORCHVISION_FILE}, "
                             f"from {TORCHVISION_URL}) or random_weights: true, not both or neither")


class OwnVideosPipeline:
    """The stages of ``videobert pipeline`` over ``videos`` (and ``transcripts``) into ``out``."""

    def __init__(self, videos: str | os.PathLike, transcripts: str | os.PathLike | None, out: str | os.PathLike,
                 config: OwnVideosConfig):
        self.videos, self.transcripts, self.out, self.config = Path(videos), transcripts, Path(out), config
        if not self.videos.exists():
            raise FileNotFoundError(f"--videos {self.videos}: no such directory or list file")
        if transcripts is not None and not Path(transcripts).is_dir():
            raise FileNotFoundError(f"--transcripts {transcripts}: no such directory")
        self.features = self.out / "features"
        self.tree = self.out / "visual_words.safetensors"
        self.corpus_dir = self.out / "corpus"
        self.run_dir = self.out / "pretrain"
        self.bundle = self.out / "pipeline"

    def stages(self) -> list[Stage]:
        c = self.config
        stages = [
            Stage("extract", self.extract, f"S3D features of {c.clip_frames}-frame clips at {c.fps} fps, {c.size} px"),
            Stage("visual_words", self.visual_words, f"hierarchical k-means, {c.levels} levels x {c.branching}"),
            Stage("corpus", self.corpus, "transcripts -> sentences -> WordPiece; segments of visual words"),
            Stage("pretrain", self.pretrain, f"{c.pretrain} run on DeepSpeed"),
            Stage("export", self.export, "the VideoBertPipeline bundle"),
        ]
        if c.verbs and c.objects:
            stages.append(Stage("zero_shot", self.zero_shot, f"{len(c.verbs)} verbs x {len(c.objects)} objects per video"))
        return stages

    def extract(self) -> dict[str, Any]:
        from videobert.features.extract import ExtractConfig, extract_features

        c = self.config
        summary = extract_features(ExtractConfig(
            videos=str(self.videos), out=str(self.features), weights=c.weights or None, size=c.size, fps=c.fps,
            clip_frames=c.clip_frames, workers=c.workers, seed=c.seed, rank=0, world_size=1, progress=False))
        if not summary.done and not summary.skipped:
            raise RuntimeError(f"no video of {self.videos} gave features: {summary.failed}")
        return {"videos_done": len(summary.done), "videos_skipped": len(summary.skipped), "failed": summary.failed,
                "clips": summary.clips}

    def visual_words(self) -> dict[str, Any]:
        from videobert.visual_words.cli import fit_tree_file

        c = self.config
        return fit_tree_file(self.features, self.tree, dict(levels=c.levels, branching=c.branching, seed=c.seed), progress=False)

    def corpus(self) -> dict[str, Any]:
        from videobert.corpus.build import CorpusConfig
        from videobert.corpus.cli import build_corpus_from_features

        c = self.config
        config = CorpusConfig(heldout_fraction=c.heldout_fraction, seed=c.seed, max_pause=c.max_pause,
                              max_sentence_words=c.max_sentence_words)
        info = build_corpus_from_features(str(self.features), str(self.tree), self.transcripts and str(self.transcripts),
                                          str(self.corpus_dir), config, c.tokenizer or None)
        if not info["splits"]["train"]["videos"]:
            raise RuntimeError(f"no video reached the corpus's train split: {info['videos_failed']}")
        return {key: info[key] for key in ("splits", "videos_failed", "transcript_errors", "transcripts_without_video")}

    def pretrain(self) -> dict[str, Any]:
        from videobert.train import load_train_config, pretrain

        c = self.config
        config = load_train_config(c.pretrain, [*c.pretrain_overrides, f"data.corpus={self.corpus_dir}",
                                                f"out={self.run_dir}", f"seed={c.seed}", "progress=false"])
        result = pretrain(config)
        if result.stopped != "completed":
            raise RuntimeError(f"pretraining stopped ({result.stopped}) at step {result.step}")
        return {"steps": result.step, "final_loss": result.loss, "tokens_per_s": result.tokens_per_s}

    def export(self) -> dict[str, Any]:
        from videobert.pipeline.export import export_pipeline

        if self.bundle.exists():
            shutil.rmtree(self.bundle)  # rewritten whole from the finished run
        export_pipeline(self.run_dir, self.bundle, self.config.weights or None)
        return {"bundle": str(self.bundle)}

    def zero_shot(self) -> dict[str, Any]:
        from videobert.features.store import finished_video_ids
        from videobert.features.clip_loader import list_videos
        from videobert.pipeline.bundle import VideoBertPipeline

        pipeline = VideoBertPipeline.from_pretrained(self.bundle, self.config.weights or None)
        extracted = set(finished_video_ids(self.features))
        report = {video.stem: pipeline.zero_shot(video, self.config.verbs, self.config.objects)
                  for video in list_videos(str(self.videos)) if video.stem in extracted}
        write_json_atomic(self.out / "zero_shot.json", report)
        return {"videos": len(report)}

    def fingerprint(self) -> dict[str, Any]:
        """The settings and the input files (names and sizes): finished stages are only reused for these."""
        from videobert.features.clip_loader import list_videos
        from videobert.text import TRANSCRIPT_EXTENSIONS
        from videobert.utils.fingerprint import digest_of

        videos = {p.name: p.stat().st_size for p in list_videos(self.videos) if p.exists()}
        transcripts = ({p.name: p.stat().st_size for p in Path(self.transcripts).iterdir()
                        if p.suffix.lower() in TRANSCRIPT_EXTENSIONS} if self.transcripts else {})
        return {"stage": "videobert pipeline", "config": dataclasses.asdict(self.config),
                "videos": digest_of(videos), "transcripts": digest_of(transcripts)}

    def run(self, overwrite: bool = False) -> dict[str, dict[str, Any]]:
        """Run (or resume) every stage; ``overwrite`` deletes the earlier outputs first. Settings or
        input files other than the earlier run's raise ``StaleOutputError`` naming what changed."""
        from videobert.utils.fingerprint import claim_output

        self.out.mkdir(parents=True, exist_ok=True)
        claim_output(self.out / "pipeline_fingerprint.json", "videobert pipeline", self.fingerprint(),
                     overwrite=overwrite, clear=self._clear)
        return run_stages(self.stages(), self.out / "stages.jsonl")

    def _clear(self) -> None:
        for name in OUTPUTS:
            path = self.out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
