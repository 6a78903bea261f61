"""Thumbnails from real (PyAV-encoded) videos, the gallery built from real features and a real
hierarchical k-means, and the PNG grids checked pixel by pixel."""

import json

import av
import numpy as np
import pytest
from PIL import Image

from videobert.cli import main
from videobert.features.store import read_video_features, write_video_features
from videobert.tasks.plots import plot_zero_shot_per_class
from videobert.visual_words import HierarchicalKMeans
from videobert.visual_words.gallery import (EMPTY_TILE, ExemplarGallery, build_gallery, clip_thumbnails, render_grid,
                                            render_text_to_video, render_video_words, render_word_exemplars)

PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0],
                    [255, 0, 255], [0, 255, 255], [255, 255, 255], [0, 0, 0]], dtype=np.uint8)


def write_video(path, colors, fps, width=80, height=48):
    """An H.264 file whose frame i is a solid ``colors[i]``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10"}
        for color in colors:
            frame = np.broadcast_to(np.asarray(color, np.uint8), (height, width, 3)).copy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def palette_index(thumb):
    """Which palette colour a (nearly solid) thumbnail shows."""
    mean = thumb.reshape(-1, 3).mean(axis=0)
    return int(np.argmin(np.abs(PALETTE.astype(float) - mean).sum(axis=1)))


def test_clip_thumbnails_take_the_frame_nearest_the_middle(tmp_path):
    path = write_video(tmp_path / "v.mp4", PALETTE, fps=4)  # frame i at i/4 s
    # middles 0.75 (frame 3), 0.3 (frame 1 at .25 is nearer than .5), 1.65 (frame 7 at 1.75 is nearer than 1.5),
    # out of order on purpose
    times = np.array([[0.5, 1.0], [0.0, 0.6], [1.5, 1.8]])
    thumbs = clip_thumbnails(path, times, size=16)
    assert thumbs.shape == (3, 16, 16, 3) and thumbs.dtype == np.uint8
    assert [palette_index(t) for t in thumbs] == [3, 1, 7]
    assert np.abs(thumbs[0].astype(int) - PALETTE[3]).max() < 40
    with pytest.raises(ValueError, match=r"v.mp4: the video ends before the clip at 5.00-6.50 s"):
        clip_thumbnails(path, np.array([[5.0, 6.5]]))


def test_render_grid_places_each_thumbnail(tmp_path):
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for _ in range(5)] + [None]
    layout = render_grid(tiles, [f"w{i}" for i in range(6)], tmp_path / "grid.png", size=20, columns=4, title="title")
    with Image.open(tmp_path / "grid.png") as image:
        assert image.format == "PNG" and image.size == layout.image_size == (4 + 4 * 24, 16 + 4 + 2 * 36)
        pixels = np.asarray(image.convert("RGB"))
    for i, tile in enumerate(tiles):
        left, top, right, bottom = layout.box(i)
        cell = pixels[top:bottom, left:right]
        if tile is None:
            assert (cell == EMPTY_TILE).all()
        else:
            np.testing.assert_array_equal(cell, tile)
    left, top, right, bottom = layout.box(0)
    assert (pixels[bottom + 1 : bottom + 12, left:right] < 128).any()  # a label is drawn under the tile


def test_build_gallery_with_real_kmeans_and_videos(tmp_path):
    rng = np.random.default_rng(0)
    videos, features = tmp_path / "videos", tmp_path / "features"
    videos.mkdir()
    clip_colors = {"alpha": [0, 1, 2, 3, 0, 1], "beta": [2, 3, 4, 5, 6, 7]}  # palette index of each 1.5 s clip
    fps = 10
    for video_id, colors in clip_colors.items():
        write_video(videos / f"{video_id}.mp4", [PALETTE[c] for c in colors for _ in range(15)], fps=fps)
        # one feature cluster per colour, with noise: the k-means words follow the colours
        centres = np.eye(8, 16, dtype=np.float32) * 10
        feats = centres[colors] + rng.normal(0, 0.3, (len(colors), 16)).astype(np.float32)
        times = np.stack([np.arange(len(colors)) * 1.5, np.arange(len(colors)) * 1.5 + 1.5], axis=1)
        write_video_features(features, video_id, feats, times)
    write_video_features(features, "gamma", np.zeros((2, 16), np.float32), np.array([[0, 1.5], [1.5, 3]]))  # no video file
    kmeans = HierarchicalKMeans(levels=2, branching=4, seed=0)  # 16 words for 8 colours: some stay unseen
    kmeans.fit(np.concatenate([read_video_features(features, v)[0] for v in ("alpha", "beta")]), progress=False)
    kmeans.save(tmp_path / "kmeans.safetensors")
    gallery = build_gallery(features, kmeans, videos, k=2, size=12)
    assert gallery.size == 12 and gallery.words()
    seen = 0
    for word in gallery.words():
        for exemplar in gallery.exemplars(word):
            clip = int(round(exemplar.start / 1.5))
            assert exemplar.video_id in clip_colors  # gamma was skipped, not fatal
            assert palette_index(exemplar.thumbnail) == clip_colors[exemplar.video_id][clip]
            seen += 1
    assert seen >= 4

    # the words of one video in time order: each tile is its word's nearest exemplar
    words = kmeans.assign(read_video_features(features, "alpha")[0])
    unseen = next(w for w in range(16) if w not in gallery.words())
    layout = render_video_words(words.tolist() + [unseen], gallery, tmp_path / "alpha.png", columns=4)
    pixels = np.asarray(Image.open(tmp_path / "alpha.png").convert("RGB"))
    for i, word in enumerate(words.tolist()):
        left, top, right, bottom = layout.box(i)
        np.testing.assert_array_equal(pixels[top:bottom, left:right], gallery.thumbnail(word))
    left, top, right, bottom = layout.box(len(words))
    assert (pixels[top:bottom, left:right] == EMPTY_TILE).all()  # a word without exemplars

    word = gallery.words()[0]
    layout = render_word_exemplars(word, gallery, tmp_path / "word.png")
    pixels = np.asarray(Image.open(tmp_path / "word.png").convert("RGB"))
    for i, exemplar in enumerate(gallery.exemplars(word)):
        left, top, right, bottom = layout.box(i)
        np.testing.assert_array_equal(pixels[top:bottom, left:right], exemplar.thumbnail)
    with pytest.raises(ValueError, match="no exemplars"):
        render_word_exemplars(unseen, gallery, tmp_path / "none.png")

    layout = render_text_to_video("cut the onion", [word, word], gallery, tmp_path / "t2v.png")
    pixels = np.asarray(Image.open(tmp_path / "t2v.png").convert("RGB"))
    left, top, right, bottom = layout.box(1)
    np.testing.assert_array_equal(pixels[top:bottom, left:right], gallery.thumbnail(word))

    # the command line: gallery file and pictures
    out = tmp_path / "out"
    assert main(["eval", "gallery", "--features", str(features), "--kmeans", str(tmp_path / "kmeans.safetensors"),
                 "--videos-dir", str(videos), "--k", "2", "--size", "12", "--timeline", "beta", "--word", str(word),
                 "--out", str(out)]) == 0
    assert ExemplarGallery.load(out / "gallery.safetensors").words() == gallery.words()
    for name in ("words.png", "video_beta.png", f"word_{word}.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG"


def test_zero_shot_plot(tmp_path):
    def report(top1, top5, classes):
        return {"count": 3, "top1": top1, "top5": top5, "mean_class_top1": top1, "mean_class_top5": top5,
                "per_class": {c: {"count": n, "top1": top1, "top5": top5} for c, n in classes.items()}}
    result = {slot: {"video": report(1.0, 1.0, classes), "prior": report(0.0, 0.5, classes)}
              for slot, classes in (("verb", {"cut": 2, "add": 1}), ("object", {"onion": 3}))}
    path = plot_zero_shot_per_class(json.loads(json.dumps(result)), tmp_path / "zs.png", dpi=50)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (300, 350)  # 6 x 7 inches at 50 dpi
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    video_top1 = np.array([0x1F, 0x77, 0xB4])
    prior_top5 = np.array([0xFF, 0x98, 0x96])
    assert (np.abs(pixels - video_top1).sum(axis=1) < 6).sum() > 200  # full-height bars drawn
    assert (np.abs(pixels - prior_top5).sum(axis=1) < 6).sum() > 50
