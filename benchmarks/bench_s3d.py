"""S3D clip throughput: ``S3D.embed`` clips/s (CPU fp32 here; bf16 + channels_last_3d on a GPU,
with achieved TFLOP/s from PyTorch's FLOP counter), as torchvision lays the network out
(``batchnorm``) and with BatchNorm folded into the convolutions (``folded``, what the extractor
runs). ``VIDEOBERT_BENCH_FULL=1`` adds the paper's
224 px, 30-frame clips on CPU (slow on 2 cores); the default measures 112 px.

    PYTHONPATH=. python -m pytest benchmarks/bench_s3d.py --benchmark-only
"""

import os

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from videobert.features import S3D

CPU_SIZES = [112, 224] if os.environ.get("VIDEOBERT_BENCH_FULL") else [112]


def flops_per_clip(model, size, frames=30) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.embed(torch.zeros(1, 3, frames, size, size, device=next(model.parameters()).device))
    return counter.get_total_flops()


def s3d(layout: str) -> S3D:
    torch.manual_seed(0)
    model = S3D().eval()
    return model.with_batchnorm_folded() if layout == "folded" else model


@pytest.mark.parametrize("layout", ["batchnorm", "folded"])
@pytest.mark.parametrize("size", CPU_SIZES)
def test_s3d_cpu(benchmark, size, layout):
    model = s3d(layout)
    batch = 4
    clips = torch.randn(batch, 3, 30, size, size)

    def run():
        with torch.inference_mode():
            return model.embed(clips)

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.min
    flops = flops_per_clip(model, size)
    benchmark.extra_info.update({"clips_per_s": batch / seconds, "gflop_per_clip": flops / 1e9,
                                 "achieved_gflop_per_s": batch * flops / seconds / 1e9, "threads": torch.get_num_threads()})
    print(f"\nS3D CPU {size}px {layout}: {batch / seconds:.2f} clips/s, {flops / 1e9:.1f} GFLOP/clip, "
          f"{batch * flops / seconds / 1e9:.0f} GFLOP/s")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("layout", ["batchnorm", "folded"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_s3d_gpu(benchmark, dtype, layout):
    model = s3d(layout).cuda().to(memory_format=torch.channels_last_3d)
    batch = 64
    clips = torch.randn(batch, 3, 30, 224, 224, device="cuda").contiguous(memory_format=torch.channels_last_3d)

    def run():
        with torch.inference_mode(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            out = model.embed(clips)
        torch.cuda.synchronize()
        return out

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=2)
    seconds = benchmark.stats.stats.min
    flops = flops_per_clip(model, 224)
    benchmark.extra_info.update({"clips_per_s": batch / seconds, "achieved_tflop_per_s": batch * flops / seconds / 1e12})
    print(f"\nS3D GPU {dtype} {layout}: {batch / seconds:.0f} clips/s, {batch * flops / seconds / 1e12:.1f} TFLOP/s")
