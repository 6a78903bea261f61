"""What a visual word looks like: the clips nearest its centroid, kept while assigning, drawn as PNG grids.

:class:`ExemplarGallery` keeps, for each visual word, the ``k`` clips whose features lie nearest
the word's leaf centroid, each as a small thumbnail of its middle frame (``size x size x 3`` uint8)
with its source (video id, clip start and end in seconds). It is a bounded accumulator, a max-heap
of distances per word, fed batch by batch; memory is at most ``num_words * k * size**2 * 3`` bytes
(k=4, size=64: 1.0 GB if every one of 20,736 words is seen; far less in practice).
:meth:`ExemplarGallery.candidates` says which clips of a batch could enter, so only their
frames need decoding.

Pictures (Pillow): the words of one video in time order (:func:`render_video_words`), one word's
exemplars (:func:`render_word_exemplars`), a text-to-video result (:func:`render_text_to_video`).
"""

from __future__ import annotations

import heapq
import io
import itertools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from videobert.utils.io import atomic_path, write_bytes_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Exemplar:
    distance: float  # squared L2 from the clip's feature to the word's centroid
    thumbnail: np.ndarray  # [size, size, 3] uint8
    video_id: str
    start: float  # seconds
    end: float


class ExemplarGallery:
    """The ``k`` clips nearest each visual word's centroid, updated batch by batch."""

    def __init__(self, num_words: int, k: int = 4, size: int = 64):
        if num_words < 1 or k < 1 or size < 1:
            raise ValueError("num_words, k and size must be >= 1")
        self.num_words, self.k, self.size = num_words, k, size
        # word -> heap of (-distance, tie-breaker, Exemplar): the root is the farthest kept clip
        self._heaps: dict[int, list[tuple[float, int, Exemplar]]] = {}
        self._counter = itertools.count()

    def _check_words(self, words: np.ndarray) -> np.ndarray:
        words = np.asarray(words, dtype=np.int64).reshape(-1)
        if words.size and (words.min() < 0 or words.max() >= self.num_words):
            raise ValueError(f"visual words must lie in [0, {self.num_words})")
        return words

    def candidates(self, words: np.ndarray, distances: np.ndarray) -> np.ndarray:
        """Bool mask ``[n]``: clips nearer than their word's current k-th exemplar (or of a word
        with fewer than k). A superset of what :meth:`add` will keep."""
        words = self._check_words(words)
        distances = np.asarray(distances, dtype=np.float64).reshape(-1)
        threshold = np.array([-self._heaps[w][0][0] if len(self._heaps.get(w, ())) >= self.k else np.inf
                              for w in words.tolist()])
        return distances < threshold if words.size else np.zeros(0, dtype=bool)

    def add(self, words: np.ndarray, distances: np.ndarray, thumbnails: np.ndarray, video_id: str,
            times: np.ndarray) -> None:
        """Offer clips: words ``[n]``, distances ``[n]``, thumbnails ``[n, size, size, 3]`` uint8,
        all from video ``video_id`` with clip times ``[n, 2]`` seconds."""
        words = self._check_words(words)
        thumbnails = np.asarray(thumbnails)
        times = np.asarray(times, dtype=np.float64).reshape(-1, 2)
        if thumbnails.shape != (len(words), self.size, self.size, 3) or thumbnails.dtype != np.uint8:
            raise ValueError(f"thumbnails must be uint8 [{len(words)}, {self.size}, {self.size}, 3], "
                             f"got {thumbnails.dtype} {thumbnails.shape}")
        if len(distances) != len(words) or len(times) != len(words):
            raise ValueError("words, distances, thumbnails and times must have the same length")
        for w, d, thumb, (start, end) in zip(words.tolist(), np.asarray(distances, dtype=np.float64).tolist(),
                                             thumbnails, times.tolist()):
            self._push(w, Exemplar(d, thumb.copy(), video_id, start, end))

    def _push(self, word: int, exemplar: Exemplar) -> None:
        heap = self._heaps.setdefault(word, [])
        item = (-exemplar.distance, next(self._counter), exemplar)
        if len(heap) < self.k:
            heapq.heappush(heap, item)
        elif exemplar.distance < -heap[0][0]:
            heapq.heapreplace(heap, item)

    def merge(self, other: "ExemplarGallery") -> None:
        """Fold in a gallery built elsewhere (e.g. another shard of the videos)."""
        if (other.num_words, other.size) != (self.num_words, self.size):
            raise ValueError("galleries differ in num_words or thumbnail size")
        for word in other.words():
            for exemplar in other.exemplars(word):
                self._push(word, exemplar)

    def words(self) -> list[int]:
        """Visual words that have at least one exemplar, ascending."""
        return sorted(w for w, heap in self._heaps.items() if heap)

    def exemplars(self, word: int) -> list[Exemplar]:
        """The word's kept clips, nearest first."""
        return [e for _, _, e in sorted(self._heaps.get(int(word), []), key=lambda item: (-item[0], item[1]))]

    def thumbnail(self, word: int) -> np.ndarray | None:
        """The nearest clip's thumbnail ``[size, size, 3]``, or ``None`` for a word never seen."""
        found = self.exemplars(word)
        return found[0].thumbnail if found else None

    def save(self, path: str | os.PathLike) -> None:
        """Write to safetensors (atomically): thumbnails, words, distances; sources in the metadata."""
        from safetensors.numpy import save_file

        items = [(w, e) for w in self.words() for e in self.exemplars(w)]
        tensors = {
            "thumbnails": np.stack([e.thumbnail for _, e in items]) if items
            else np.zeros((0, self.size, self.size, 3), np.uint8),
            "words": np.array([w for w, _ in items], dtype=np.int64),
            "distances": np.array([e.distance for _, e in items], dtype=np.float64),
        }
        metadata = {"num_words": str(self.num_words), "k": str(self.k), "size": str(self.size),
                    "sources": json.dumps([[e.video_id, e.start, e.end] for _, e in items])}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ExemplarGallery":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
        try:
            gallery = cls(int(meta["num_words"]), int(meta["k"]), int(meta["size"]))
            sources = json.loads(meta["sources"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a gallery file (metadata {sorted(meta)})") from exc
        for w, d, thumb, (video_id, start, end) in zip(tensors["words"].tolist(), tensors["distances"].tolist(),
                                                       tensors["thumbnails"], sources):
            gallery._push(w, Exemplar(d, thumb, video_id, start, end))
        return gallery


def centroid_distances(features: np.ndarray, words: np.ndarray, leaf_centroids: np.ndarray) -> np.ndarray:
    """Squared L2 distance of each feature to its word's centroid: ``[n, D], [n], [W, D] -> [n]``."""
    diff = np.asarray(features, dtype=np.float32) - np.asarray(leaf_centroids, dtype=np.float32)[np.asarray(words)]
    return np.einsum("nd,nd->n", diff, diff)


def _square_thumbnail(image: Image.Image, size: int) -> np.ndarray:
    """Centre crop to a square, resize to ``size x size``: ``[size, size, 3]`` uint8."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.convert("RGB").crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def clip_thumbnails(video_path: str | os.PathLike, times: np.ndarray, size: int = 64) -> np.ndarray:
    """The frame nearest each clip's middle, as thumbnails ``[n, size, size, 3]`` uint8.

    ``times [n, 2]`` clip start/end seconds from the first frame (as ``videobert.video`` times
    clips). One sequential decode (PyAV), stopping after the last clip. Raises ``ValueError`` naming the file and the time when the video ends before a clip.
    """
    import av

    times = np.asarray(times, dtype=np.float64).reshape(-1, 2)
    middles = times.mean(axis=1)
    order = np.argsort(middles, kind="stable").tolist()
    out = np.zeros((len(times), size, size, 3), dtype=np.uint8)
    j = 0  # order[j:] are the clips whose middle lies after every frame seen so far
    previous = None  # (time, frame, cached thumbnail)
    first_time = None

    def thumb_of(entry: list) -> np.ndarray:
        if entry[2] is None:
            entry[2] = _square_thumbnail(entry[1].to_image(), size)
        return entry[2]

    with av.open(str(video_path)) as container:
        for frame in container.decode(video=0):
            if frame.time is None:
                continue
            first_time = float(frame.time) if first_time is None else first_time
            current = [float(frame.time) - first_time, frame, None]
            while j < len(order) and middles[order[j]] <= current[0]:
                i = order[j]  # settled: the nearest frame is the previous one or this one
                nearer = previous is None or current[0] - middles[i] < middles[i] - previous[0]
                out[i] = thumb_of(current if nearer else previous)
                j += 1
            if j == len(order):
                break
            previous = current
    for i in order[j:]:  # middles after the last frame: take it if it still lies inside the clip
        if previous is None or previous[0] < times[i, 0]:
            raise ValueError(f"{video_path}: the video ends before the clip at {times[i, 0]:.2f}-{times[i, 1]:.2f} s")
        out[i] = thumb_of(previous)
    return out


# --- pictures -------------------------------------------------------------------------------------

PAD, LABEL_HEIGHT, TITLE_HEIGHT = 4, 12, 16
BACKGROUND, EMPTY_TILE, INK = (255, 255, 255), (200, 200, 200), (0, 0, 0)


@dataclass(frozen=True)
class GridLayout:
    """Where tile ``i`` of a grid lies: ``box(i)`` = (left, top, right, bottom) pixels."""

    size: int
    columns: int
    count: int
    title: bool

    def box(self, i: int) -> tuple[int, int, int, int]:
        row, col = divmod(i, self.columns)
        left = PAD + col * (self.size + PAD)
        top = (TITLE_HEIGHT if self.title else 0) + PAD + row * (self.size + LABEL_HEIGHT + PAD)
        return left, top, left + self.size, top + self.size

    @property
    def image_size(self) -> tuple[int, int]:
        rows = max(1, -(-self.count // self.columns))
        columns = max(1, min(self.columns, self.count))
        return (PAD + columns * (self.size + PAD),
                (TITLE_HEIGHT if self.title else 0) + PAD + rows * (self.size + LABEL_HEIGHT + PAD))


def render_grid(tiles: Sequence[np.ndarray | None], labels: Sequence[str], path: str | os.PathLike,
                size: int, columns: int = 8, title: str | None = None) -> GridLayout:
    """Draw tiles ``[size, size, 3]`` uint8 (``None``: a grey placeholder) in rows of ``columns``,
    each with its label underneath, and write a PNG (atomically). Returns the layout."""
    if len(tiles) != len(labels):
        raise ValueError(f"{len(tiles)} tiles but {len(labels)} labels")
    layout = GridLayout(size, columns, len(tiles), title is not None)
    image = Image.new("RGB", layout.image_size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    if title is not None:
        draw.text((PAD, 2), title, fill=INK)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        left, top, right, bottom = layout.box(i)
        if tile is None:
            draw.rectangle((left, top, right - 1, bottom - 1), fill=EMPTY_TILE)
        else:
            image.paste(Image.fromarray(np.asarray(tile, dtype=np.uint8)), (left, top))
        draw.text((left, bottom + 1), label, fill=INK)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())
    return layout


def render_video_words(words: Sequence[int], gallery: ExemplarGallery, path: str | os.PathLike,
                       times: np.ndarray | None = None, columns: int = 12, title: str | None = None) -> GridLayout:
    """One video's visual words in time order, each drawn as its nearest exemplar; labelled with the
    word id, or the clip start time in seconds when ``times [n, 2]`` is given."""
    labels = [f"{t:.1f}s" for t in np.asarray(times)[:, 0]] if times is not None else [str(w) for w in words]
    return render_grid([gallery.thumbnail(w) for w in words], labels, path, gallery.size, columns, title)


def render_word_exemplars(word: int, gallery: ExemplarGallery, path: str | os.PathLike, columns: int = 8
                          ) -> GridLayout:
    """A visual word's exemplars, nearest its centroid first, labelled with their source time."""
    found = gallery.exemplars(word)
    if not found:
        raise ValueError(f"visual word {word} has no exemplars in this gallery")
    return render_grid([e.thumbnail for e in found], [f"{e.start:.1f}s" for e in found], path, gallery.size,
                       columns, title=f"visual word {word}: " + ", ".join(sorted({e.video_id for e in found})))


def render_text_to_video(sentence: str, words: Sequence[int], gallery: ExemplarGallery, path: str | os.PathLike,
                         columns: int = 12) -> GridLayout:
    """A text-to-video result: the sentence as title, then its generated words' thumbnails."""
    return render_grid([gallery.thumbnail(w) for w in words], [str(w) for w in words], path, gallery.size,
                       columns, title=sentence)


# --- building while assigning --------------------------------------------------------------------

def find_video(videos_dir: str | os.PathLike, video_id: str) -> Path | None:
    """The file ``<videos_dir>/<video_id>.<any extension>`` (a video's id is its file name stem)."""
    matches = sorted(p for p in Path(videos_dir).glob(f"{video_id}.*") if p.is_file())
    return matches[0] if matches else None


def build_gallery(features_dir: str | os.PathLike, kmeans, videos_dir: str | os.PathLike, k: int = 4,
                  size: int = 64, gallery: ExemplarGallery | None = None) -> ExemplarGallery:
    """Assign every video's features (``videobert extract`` output) and keep the exemplars.

    Only clips that can enter the gallery are decoded. A video that cannot be found or decoded
    is logged and skipped; the rest go on.
    """
    import av

    from videobert.features.store import iter_video_features

    leaf = np.asarray(kmeans.leaf_centroids, dtype=np.float32)
    gallery = gallery or ExemplarGallery(len(leaf), k, size)
    for video_id, features, times in iter_video_features(features_dir):
        features = np.asarray(features, dtype=np.float32)
        words = np.asarray(kmeans.assign(features), dtype=np.int64)
        distances = centroid_distances(features, words, leaf)
        keep = gallery.candidates(words, distances)
        if not keep.any():
            continue
        path = find_video(videos_dir, video_id)
        try:
            if path is None:
                raise FileNotFoundError(f"no file {video_id}.* in {videos_dir}")
            thumbs = clip_thumbnails(path, np.asarray(times)[keep], size)
        except (OSError, ValueError, av.FFmpegError) as exc:
            log.warning("gallery: skipping video %s: %s", video_id, exc)
            continue
        gallery.add(words[keep], distances[keep], thumbs, video_id, np.asarray(times)[keep])
    return gallery
