"""Retrieval results as a PNG: recall against K for both directions (with what chance gives), and
a few text queries with thumbnails of their five best segments, the right ones framed in green.

Thumbnails are the frame nearest each segment's middle, decoded from ``<videos_dir>/<video id>.*``
with the gallery's ``clip_thumbnails``; without a videos directory only the recall plot is drawn.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from videobert.tasks.retrieval.metrics import chance_recall_at, recall_at
from videobert.tasks.plots import save_figure

log = logging.getLogger(__name__)

RIGHT, WRONG = "#2ca02c", "#bbbbbb"


def segment_thumbnails(result: dict[str, Any], indices: list[int], videos_dir: str | os.PathLike, size: int = 96
                       ) -> dict[int, np.ndarray]:
    """``segment index -> [size, size, 3]`` uint8 for the ``indices`` of ``result["videos"]``, one
    decode per video. A video that is missing or does not decode is logged and left out."""
    import av

    from videobert.visual_words.gallery import clip_thumbnails, find_video

    by_video: dict[str, list[int]] = {}
    for i in sorted(set(indices)):
        by_video.setdefault(result["videos"][i]["video_id"], []).append(i)
    out = {}
    for video_id, rows in by_video.items():
        path = find_video(videos_dir, video_id)
        times = np.array([[result["videos"][i]["start"], result["videos"][i]["end"]] for i in rows])
        try:
            if path is None:
                raise FileNotFoundError(f"no file {video_id}.* in {videos_dir}")
            out.update(zip(rows, clip_thumbnails(path, times, size)))
        except (OSError, ValueError, av.FFmpegError) as exc:
            log.warning("retrieval picture: no thumbnails from %s: %s", video_id, exc)
    return out


def shown_queries(result: dict[str, Any], count: int = 4) -> list[int]:
    """Text queries to draw: ``count`` spread evenly over the list (not the best ones)."""
    n = len(result["texts"])
    return sorted(set(np.linspace(0, n - 1, min(count, n)).round().astype(int).tolist()))


def plot_retrieval(result: dict[str, Any], path: str | os.PathLike, videos_dir: str | os.PathLike | None = None,
                   queries: int = 4, dpi: int = 100) -> Path:
    """Draw ``evaluate_retrieval``'s result (or its JSON): recall@K for K = 1 .. candidates in both
    directions beside chance, then, given ``videos_dir``, ``queries`` text queries each with its top
    five segments (in score order, ties by index; the rank in each title counts ties against the
    right answer, so it can exceed the slot number shown). Writes the PNG atomically and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = shown_queries(result, queries) if videos_dir is not None else []
    thumbs = segment_thumbnails(result, [v for q in shown for v in result["texts"][q]["top5"]], videos_dir) if shown else {}
    figure = plt.figure(figsize=(8, 3.6 + 1.6 * len(shown)), dpi=dpi)
    grid = figure.add_gridspec(1 + len(shown), 5, height_ratios=[3.4] + [1.6] * len(shown))
    _plot_recall(figure.add_subplot(grid[0, :]), result)
    for row, q in enumerate(shown, start=1):
        query = result["texts"][q]
        for col, v in enumerate(query["top5"]):
            ax = figure.add_subplot(grid[row, col])
            image = thumbs.get(v)
            ax.imshow(image if image is not None else np.full((8, 8, 3), 200, np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
            right = v in query["answers"]
            for spine in ax.spines.values():
                spine.set_edgecolor(RIGHT if right else WRONG)
                spine.set_linewidth(4 if right else 1)
            segment = result["videos"][v]
            ax.set_xlabel(f"{col + 1}. {segment['video_id']}\n{segment['start']:.1f}-{segment['end']:.1f} s", fontsize=6)
            if col == 0:
                ax.set_title(f"\"{query['sentence']}\" (right answer at rank {query['rank']})", fontsize=8, loc="left")
    figure.tight_layout()
    return save_figure(figure, path)


def _plot_recall(ax, result: dict[str, Any]) -> None:
    n_texts, n_videos = len(result["texts"]), len(result["videos"])
    relevance = np.zeros((n_texts, n_videos), dtype=bool)
    for t, text in enumerate(result["texts"]):
        relevance[t, text["answers"]] = True
    for name, ranks, rel, colour in (
            ("text to video", [q["rank"] for q in result["texts"]], relevance, "tab:blue"),
            ("video to text", [v["rank"] for v in result["videos"]], relevance.T, "tab:orange")):
        ks = np.arange(1, rel.shape[1] + 1)
        ax.plot(ks, recall_at(np.array(ranks), ks), color=colour, label=f"{name} (MedR {np.median(ranks):g})")
        ax.plot(ks, chance_recall_at(rel, ks), color=colour, linestyle=":", label=f"{name}, chance")
    ax.set_xscale("log")
    most = max(n_texts, n_videos)
    ticks = [k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if k < most] + [most]
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.minorticks_off()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("K (candidates looked at)")
    ax.set_ylabel("recall@K")
    mode = result["mode"] + (f", k = {result['k']}" if result.get("k") else "")
    ax.set_title(f"retrieval ({mode}): {n_texts} sentences, {n_videos} segments", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
