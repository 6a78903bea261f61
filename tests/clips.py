"""Clip times as the feature store writes them, for tests that make up visual words by hand."""

import numpy as np


def clip_times(n: int, clip: float = 1.5) -> np.ndarray:
    """``[n, 2]`` start / end seconds of ``n`` back-to-back clips of ``clip`` seconds."""
    return np.stack([np.arange(n) * clip, (np.arange(n) + 1) * clip], axis=1)
