"""The demo's pictures: training curves, zero-shot accuracy beside chance, visual-word galleries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videobert.tasks.plots import save_figure

if TYPE_CHECKING:
    from videobert.demo.pipeline import DemoPipeline


def _save(figure, path: str | os.PathLike) -> Path:
    return save_figure(figure, path, dpi=110, bbox_inches="tight")


def _figure(columns: int):
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt.subplots(1, columns, figsize=(5.2 * columns, 3.6))


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start): per-step metrics are noisy."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    lo = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (sums[1:] - sums[lo]) / (np.arange(1, len(values) + 1) - lo)


def plot_loss_curves(run_dir: str | os.PathLike, path: str | os.PathLike,
                     keys: tuple[tuple[str, ...], tuple[str, ...]]) -> Path:
    """Losses (left) and accuracies (right) per logged step from the run's ``metrics.jsonl``: faint
    raw values, and their running mean over 9 records; ``keys``: (loss keys, accuracy keys), those
    the run logged are drawn."""
    from videobert.train import read_metrics

    records = read_metrics(run_dir)
    if not records:
        raise ValueError(f"{run_dir}/metrics.jsonl holds no training records")
    figure, (losses, accuracies) = _figure(2)
    for axis, axis_keys in zip((losses, accuracies), keys):
        for key in axis_keys:
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                steps, values = zip(*points)
                line, = axis.plot(steps, values, linewidth=0.6, alpha=0.35)
                axis.plot(steps, _running_mean(np.array(values), 9), color=line.get_color(), label=key, linewidth=1.5)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    losses.set_title("training losses")
    accuracies.set_title("training accuracies")
    accuracies.set_ylim(0, 1)
    return _save(figure, path)


def plot_zero_shot(evaluation: dict[str, Any], path: str | os.PathLike) -> Path:
    """Held-out top-1 / top-5 for verbs and objects: with video, language prior only, and chance;
    and alignment accuracy beside its 50% chance."""
    figure, (zero_shot, alignment) = _figure(2)
    groups = [f"{slot} {k}" for slot in ("verb", "object") for k in ("top1", "top5")]
    series = {
        "with video": [evaluation[s][k] for s in ("verb", "object") for k in ("top1", "top5")],
        "text prior only": [evaluation[s][f"prior_{k}"] for s in ("verb", "object") for k in ("top1", "top5")],
        "chance": [evaluation[s][f"chance_{k}"] for s in ("verb", "object") for k in ("top1", "top5")],
    }
    series = {name: values for name, values in series.items() if None not in values}  # no prior for prompt embeddings
    x = np.arange(len(groups))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        bars = zero_shot.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
        zero_shot.bar_label(bars, fmt="%.2f", fontsize=7)
    zero_shot.set_xticks(x, groups)
    zero_shot.set_ylim(0, 1.05)
    zero_shot.set_title(f"zero-shot classification, {evaluation['segments']} held-out segments")
    zero_shot.legend(fontsize=8)
    align = evaluation["alignment"]
    bars = alignment.bar(["model", "chance"], [align["accuracy"], align["chance"]], color=["tab:blue", "tab:green"])
    alignment.bar_label(bars, fmt="%.2f", fontsize=8)
    alignment.set_ylim(0, 1.05)
    alignment.set_title(f"text-video alignment, {align['pairs']} held-out pairs")
    return _save(figure, path)


def draw_galleries(pipeline: "DemoPipeline", out_dir: str | os.PathLike, per_word: int = 4) -> dict[str, Path]:
    """PNG galleries: every visual word as its nearest clip, one held-out video as its words in
    time order, and the exemplars of the most frequent word."""
    from videobert.visual_words import HierarchicalKMeans
    from videobert.visual_words.gallery import (
        ExemplarGallery, build_gallery, render_grid, render_video_words, render_word_exemplars)

    out_dir = Path(out_dir)
    kmeans = HierarchicalKMeans.load(pipeline.kmeans_path)
    gallery = ExemplarGallery(pipeline.config.num_visual_words, k=per_word, size=64)
    for split in ("train", "heldout"):
        build_gallery(pipeline.features / split, kmeans, pipeline.data / split / "videos", k=per_word, size=64, gallery=gallery)
    words = gallery.words()
    if not words:
        raise ValueError("no visual word has an exemplar clip: were the videos decodable?")
    paths = {"all_words": out_dir / "visual_words.png"}
    render_grid([gallery.thumbnail(w) for w in words], [str(w) for w in words], paths["all_words"], size=gallery.size,
                columns=16, title=f"{len(words)} visual words, each shown as the clip nearest its centroid")
    video_words = pipeline.video_words()
    heldout = sorted(v for v in video_words if v.startswith("heldout_"))
    if heldout:
        words_of_video, times = video_words[heldout[0]]
        paths["heldout_video"] = out_dir / f"{heldout[0]}_words.png"
        render_video_words(words_of_video.tolist(), gallery, paths["heldout_video"], times=times,
                           title=f"held-out video {heldout[0]}: its visual words in time order")
    counts = np.bincount(np.concatenate([w for w, _ in video_words.values()]), minlength=pipeline.config.num_visual_words)
    top = int(counts.argmax())
    paths["top_word"] = out_dir / f"word_{top}_exemplars.png"
    render_word_exemplars(top, gallery, paths["top_word"])
    return paths
