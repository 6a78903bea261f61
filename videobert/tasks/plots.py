"""Zero-shot results as a PNG: top-1 / top-5 bars per class, with video and language prior."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from videobert.utils.io import atomic_path

# (report, metric, colour) of each bar in a class's group
BARS = (("video", "top1", "#1f77b4"), ("video", "top5", "#aec7e8"),
        ("prior", "top1", "#d62728"), ("prior", "top5", "#ff9896"))


def plot_zero_shot_per_class(result: dict[str, Any], path: str | os.PathLike, max_classes: int = 20,
                             dpi: int = 100) -> Path:
    """Draw ``ZeroShotResult.to_dict()`` (or its JSON) as two panels, verbs and objects: for the
    ``max_classes`` most frequent classes, bars of top-1 and top-5 accuracy with video and with the
    language prior. Writes the PNG atomically and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = max(min(max_classes, len(result[slot]["video"]["per_class"])) for slot in ("verb", "object"))
    figure, axes = plt.subplots(2, 1, figsize=(max(6.0, 0.5 * shown + 2), 7), dpi=dpi)
    for ax, slot in zip(axes, ("verb", "object")):
        video = result[slot]["video"]["per_class"]
        has_prior = "prior" in result[slot]  # none for prompt-embedding zero-shot
        bars = [bar for bar in BARS if has_prior or bar[0] == "video"]
        classes = sorted(video, key=lambda c: (-video[c]["count"], c))[:max_classes]
        x = np.arange(len(classes))
        width = 0.8 / len(bars)
        for i, (report, metric, colour) in enumerate(bars):
            source = result[slot][report]["per_class"]
            ax.bar(x + (i - (len(bars) - 1) / 2) * width, [source[c][metric] for c in classes], width, color=colour,
                   label=f"{report} {metric.replace('top', 'top-')}")
        ax.set_xticks(x, [f"{c}\n(n={video[c]['count']})" for c in classes], fontsize=7, rotation=45, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("accuracy")
        overall = result[slot]["video"]
        prior_note = (f" (prior {result[slot]['prior']['top1']:.2f} / {result[slot]['prior']['top5']:.2f})" if has_prior
                      else f" ({result.get('method', 'prompt-embedding')}: no language prior)")
        ax.set_title(f"{slot}s: top-1 {overall['top1']:.2f}, top-5 {overall['top5']:.2f}{prior_note}")
        ax.legend(fontsize=7, ncol=4, loc="upper right")
    figure.tight_layout()
    return save_figure(figure, path)


def save_figure(figure, path: str | os.PathLike, **savefig: Any) -> Path:
    """Write a matplotlib ``figure`` to ``path`` as PNG (atomically) and close it; ``savefig`` options
    (dpi, bbox_inches, ...) pass through."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", **savefig)
    plt.close(figure)
    return path
