"""``captions.png``: a few evaluated segments, each as a strip of its clips' middle frames with the
reference caption and every variant's generated caption underneath."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from videobert.tasks.captioning.data import CaptionSegment
from videobert.tasks.inputs import subsample_evenly
from videobert.utils.io import write_bytes_atomic
from videobert.visual_words.gallery import clip_thumbnails, find_video

log = logging.getLogger(__name__)

PAD, LINE, CHAR = 6, 12, 6  # pixels: margin, text line height, width of a character of Pillow's default font
INK, GREY, EMPTY = (0, 0, 0), (90, 90, 90), (200, 200, 200)


def _frames(segment: CaptionSegment, times: np.ndarray, videos_dirs: Sequence[str | os.PathLike], count: int,
            size: int) -> list[np.ndarray | None]:
    """Up to ``count`` of the segment's clips (evenly spaced) as thumbnails; ``None`` where no video is found."""
    times = np.asarray(times)[subsample_evenly(np.arange(len(times)), count)]
    for directory in videos_dirs:
        path = find_video(directory, segment.video_id)
        if path is not None:
            try:
                return list(clip_thumbnails(path, times, size))
            except Exception as exc:  # noqa: BLE001 - a picture never stops the task; the reason is logged
                log.warning("captions.png: no frames of %s: %s", path, exc)
                break
    return [None] * len(times)


def draw_captions(items: Sequence[tuple[CaptionSegment, np.ndarray, Mapping[str, str]]],
                  videos_dirs: Sequence[str | os.PathLike], path: str | os.PathLike, frames: int = 8,
                  size: int = 64) -> Path:
    """Write the PNG (atomically). ``items``: (segment, its clips' times ``[n, 2]`` s, variant -> caption)."""
    rows = []
    for segment, times, generated in items:
        lines = [(f"{segment.segment_id}  {segment.start:.1f}-{segment.end:.1f} s", GREY),
                 (f"reference: {segment.caption}", INK), *((f"{v}: {c or '(empty)'}", INK) for v, c in generated.items())]
        rows.append((_frames(segment, times, videos_dirs, frames, size), lines))
    width = max([640] + [PAD + frames * (size + PAD)])
    heights = [PAD + size + PAD + LINE * len(lines) + PAD for _, lines in rows]
    image = Image.new("RGB", (width, max(1, sum(heights))), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    top = 0
    for (tiles, lines), height in zip(rows, heights):
        for i, tile in enumerate(tiles):
            left = PAD + i * (size + PAD)
            if tile is None:
                draw.rectangle((left, top + PAD, left + size - 1, top + PAD + size - 1), fill=EMPTY)
            else:
                image.paste(Image.fromarray(np.asarray(tile, dtype=np.uint8)), (left, top + PAD))
        for j, (text, colour) in enumerate(lines):
            draw.text((PAD, top + 2 * PAD + size + j * LINE), text[: (width - 2 * PAD) // CHAR], fill=colour)
        top += height
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)
