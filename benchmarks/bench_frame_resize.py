"""frame_resize (YUV frame -> RGB crop of its antialiased resize) beside the plain PyTorch reference
and the outside libraries doing the same work: swscale's RGB conversion then PyTorch's uint8
antialiased resize (what the PyAV decoder ran before), and swscale scaling and converting in one
call (faster, but a different filter: 7-10 levels away from torchvision's resize on average).
``cpu_normalized`` is the kernel writing float32 normalised for S3D (what read_clips asks for).

Frames are decoded from an H.264 file of a panning noise texture (4:2:0), 640x360 to 1920x1080,
into S3D's input: the centre 224 x 224 of a 256 x 256 resize. One thread, as on the decoder's
conversion thread. Reported: ms per frame, ratios, and source bytes read per second against this
machine's single-thread memory copy rate (the op is compute-bound; the figure says how far).

    PYTHONPATH=. python -m pytest benchmarks/bench_frame_resize.py --benchmark-only -s
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from av.video.reformatter import Interpolation, VideoReformatter

from videobert.ops import frame_resize, yuv_to_rgb_affine
from videobert.video import S3D_MEAN, S3D_STD
from videobert.video.pyav_backend import frame_planes
from videobert.video.synthetic import write_video

RESIZE, SIZE = 256, 224
MARGIN = (RESIZE - SIZE) // 2
CROP = (MARGIN, MARGIN, SIZE, SIZE)
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module", params=[(640, 360), (1280, 720), (1920, 1080)], ids=["360p", "720p", "1080p"])
def frames(request, tmp_path_factory):
    width, height = request.param
    path = write_video(tmp_path_factory.mktemp("frames") / "v.mp4", frames=12, width=width, height=height, textured=True)
    with av.open(path) as container:
        decoded = list(container.decode(video=0))
    planes = [frame_planes(f) for f in decoded]
    return f"{height}p", decoded, planes


def kernel(frames, backend, normalize=None):
    _, _, planes = frames
    affine = yuv_to_rgb_affine()
    for y, u, v in planes:
        frame_resize(y, u, v, affine, (RESIZE, RESIZE), CROP, normalize=normalize, backend=backend)


def swscale_then_torch(frames):
    reformatter = VideoReformatter()
    for frame in frames[1]:
        rgb = torch.from_numpy(reformatter.reformat(frame, format="rgb24").to_ndarray()).permute(2, 0, 1)[None]
        resized = F.interpolate(rgb, size=(RESIZE, RESIZE), mode="bilinear", antialias=True)
        resized[0, :, MARGIN:MARGIN + SIZE, MARGIN:MARGIN + SIZE].permute(1, 2, 0).contiguous()


def swscale_scaled(frames):
    reformatter = VideoReformatter()
    for frame in frames[1]:
        rgb = reformatter.reformat(frame, RESIZE, RESIZE, "rgb24", interpolation=Interpolation.BILINEAR).to_ndarray()
        np.ascontiguousarray(rgb[MARGIN:MARGIN + SIZE, MARGIN:MARGIN + SIZE])


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the decoder's conversion thread is one thread
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("route", ["cpu", "cpu_normalized", "reference", "swscale_then_torch", "swscale_scaled"])
def test_frame_resize(benchmark, frames, route):
    name, decoded, planes = frames
    run = {"cpu": lambda: kernel(frames, "cpu"), "cpu_normalized": lambda: kernel(frames, "cpu", (S3D_MEAN, S3D_STD)),
           "reference": lambda: kernel(frames, "reference"),
           "swscale_then_torch": lambda: swscale_then_torch(frames), "swscale_scaled": lambda: swscale_scaled(frames)}[route]
    benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    per_frame = benchmark.stats.stats.min / len(decoded)
    RESULTS[f"{name} {route}"] = per_frame
    source_bytes = sum(p.numel() for p in planes[0])
    benchmark.extra_info.update({"ms_per_frame": per_frame * 1e3, "source_bytes_per_s": source_bytes / per_frame})
    print(f"\n{name} {route}: {per_frame * 1e3:.3f} ms/frame, source read {source_bytes / per_frame / 1e9:.2f} GB/s")


def test_memory_copy_and_summary(benchmark):
    """Single-thread copy of 64 MB (read + write) as this machine's memory rate; then the summary."""
    src, dst = torch.empty(64 << 20, dtype=torch.uint8), torch.empty(64 << 20, dtype=torch.uint8)
    benchmark.pedantic(dst.copy_, args=(src,), rounds=5, iterations=1, warmup_rounds=1)
    copy = 2 * src.numel() / benchmark.stats.stats.min
    print(f"\nsingle-thread memory copy: {copy / 1e9:.1f} GB/s (read + write)")
    for size in ("360p", "720p", "1080p"):
        ours = RESULTS.get(f"{size} cpu")
        if ours is None:
            continue
        others = ", ".join(f"{route} {RESULTS[f'{size} {route}'] * 1e3:.3f} ms ({RESULTS[f'{size} {route}'] / ours:.2f}x)"
                           for route in ("cpu_normalized", "reference", "swscale_then_torch", "swscale_scaled") if f"{size} {route}" in RESULTS)
        print(f"{size}: cpu kernel {ours * 1e3:.3f} ms/frame; {others}")
