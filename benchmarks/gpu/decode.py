"""GPU piece `decode`: DALI decoding on the GPU (NVDEC) against PyAV on the CPU, clips/s per codec,
and whether ``read_clips(backend="auto")``'s rule (:func:`videobert.video.reader.auto_uses_dali`)
picks the faster one.

Per codec, one synthetic 8 s 640x360 30 fps textured video, decoded into 224-pixel 30-frame clips at
20 fps (uint8, ``read_raw_clips``) by each backend; the best of 3 runs after one warm-up (DALI builds
its pipeline on the first). PyAV uses all cores but one for FFmpeg's threads, as the reader does.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from gpu_common import piece_main, require

# codec -> (FFmpeg encoder, container, pixel format); VP9 last: the slowest to encode
CODECS = {"h264": ("libx264", ".mp4", "yuv420p"), "hevc": ("libx265", ".mp4", "yuv420p"),
          "mjpeg": ("mjpeg", ".avi", "yuvj420p"), "vp9": ("libvpx-vp9", ".webm", "yuv420p")}


def clips_per_second(path: Path, backend: str, spec, runs: int) -> tuple[float, int]:
    from videobert.video import read_raw_clips

    count = len(list(read_raw_clips(path, spec, backend=backend)))  # warm-up (DALI builds its pipeline)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in read_raw_clips(path, spec, backend=backend):
            pass
        best = min(best, time.perf_counter() - start)
    return count / best, count


def measure(args) -> dict:
    require(["av"], "decoding (and writing the test videos)")
    import av
    import torch

    from videobert.video.dali_backend import dali_available
    from videobert.video.reader import auto_uses_dali, make_decoder
    from videobert.video.sampling import ClipSpec
    from videobert.video.synthetic import write_video

    gpu = torch.cuda.is_available()
    dali_backend = "dali" if gpu else "dali-cpu"
    spec = ClipSpec(fps=20, clip_frames=30, size=64 if args.smoke else 224)
    frames, width, height = (45, 96, 64) if args.smoke else (240, 640, 360)
    result = {"video": f"{frames} frames {width}x{height} 30 fps", "clip_size": spec.size, "dali": dali_available(),
              "dali_device": "gpu" if gpu else "cpu", "codecs": {}}
    if not dali_available():
        result["dali_missing"] = ("nvidia-dali-cuda120 is not installed: PyAV figures only (its wheel is several "
                                  "hundred MB, too large to carry to a machine without a registry)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (encoder, suffix, pix_fmt) in CODECS.items():
            if encoder not in av.codecs_available:
                result["codecs"][name] = {"skipped": f"this FFmpeg has no {encoder} encoder"}
                continue
            path = Path(write_video(Path(tmp) / f"{name}{suffix}", codec=encoder, fps=30, frames=frames,
                                    width=width, height=height, textured=True, pix_fmt=pix_fmt))
            row = {}
            row["pyav_clips_per_s"], row["clips"] = clips_per_second(path, "pyav", spec, 1 if args.smoke else 3)
            if dali_available():
                try:
                    row["dali_clips_per_s"] = clips_per_second(path, dali_backend, spec, 1 if args.smoke else 3)[0]
                    row["dali_over_pyav"] = row["dali_clips_per_s"] / row["pyav_clips_per_s"]
                except Exception as exc:  # a codec this GPU's NVDEC (or DALI's CPU decoder) lacks
                    row["dali_error"] = f"{type(exc).__name__}: {exc}"
                auto = make_decoder(path, "auto")
                row["auto_picks"] = f"{auto.name}-{getattr(auto, 'device', 'cpu')}"
                if "dali_over_pyav" in row:
                    row["auto_rule_holds"] = auto_uses_dali(name, gpu) == (row["dali_over_pyav"] > 1.0)
            result["codecs"][name] = row
    return result


if __name__ == "__main__":
    piece_main(measure)
