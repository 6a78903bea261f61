"""frame_resize: the C++ kernel against the plain PyTorch reference, the colour matrices against
known colours, and the op against the route it replaces (swscale RGB, then PyTorch's resize)."""

import av
import pytest
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter

from videobert.ops import frame_resize, yuv_to_rgb_affine
from videobert.ops.frame_resize_reference import frame_resize_reference
from videobert.video import S3D_MEAN, S3D_STD, normalize_clips
from videobert.video.pyav_backend import frame_planes
from videobert.video.synthetic import write_video
from devices import CPU_ISAS, cpu_isa  # noqa: F401 (fixture)


def planes(height, width, chroma_height, chroma_width, seed=0, padding=0):
    """Random Y, U, V planes; ``padding`` extra bytes per row (views into wider buffers, as decoders give)."""
    g = torch.Generator().manual_seed(seed)

    def plane(h, w):
        return torch.randint(0, 256, (h, w + padding), dtype=torch.uint8, generator=g)[:, :w]

    return plane(height, width), plane(chroma_height, chroma_width), plane(chroma_height, chroma_width)


# (luma H, W), (chroma H, W), resize, crop (top, left, height, width)
GEOMETRIES = [
    ((360, 640), (180, 320), (256, 256), (16, 16, 224, 224)),  # 4:2:0, S3D's transform
    ((37, 53), (19, 27), (40, 40), (3, 2, 35, 37)),  # odd sizes, crop not a multiple of 8
    ((48, 64), (48, 32), (30, 50), (0, 0, 30, 50)),  # 4:2:2, whole resize
    ((45, 45), (45, 45), (17, 9), (5, 1, 11, 7)),  # 4:4:4, tiny crop
    ((20, 30), (10, 15), (64, 96), (8, 8, 48, 80)),  # upsampling
    ((120, 90), (60, 45), (32, 32), (31, 0, 1, 32)),  # one output row
    ((120, 90), (60, 45), (32, 32), (0, 31, 32, 1)),  # one output column
    ((1, 1), (1, 1), (9, 9), (0, 0, 9, 9)),  # one source pixel
]


@pytest.mark.parametrize("luma,chroma,resize,crop", GEOMETRIES)
@pytest.mark.parametrize("matrix,full_range", [("bt601", False), ("bt709", True)])
def test_cpu_kernel_matches_reference(luma, chroma, resize, crop, matrix, full_range):
    y, u, v = planes(*luma, *chroma, padding=5)
    affine = yuv_to_rgb_affine(matrix, full_range)
    expected = frame_resize_reference(y, u, v, affine, resize, crop)
    got = frame_resize(y, u, v, affine, resize, crop, backend="cpu")
    assert got.shape == (crop[2], crop[3], 3) and got.dtype == torch.uint8
    diff = (got.int() - expected.int()).abs()
    # float32 sums in a different order: a value within rounding of .5 may land one level apart
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01


@pytest.mark.parametrize("cpu_isa", CPU_ISAS, indirect=True)
def test_every_cpu_isa_variant_matches_reference(cpu_isa):
    """Each ISA variant of the C++ kernel: bytes against the reference, normalised floats against
    normalize_clips of its own bytes."""
    import videobert._C

    assert videobert._C.cpu_isa().startswith(cpu_isa)
    affine = yuv_to_rgb_affine("bt709", True)
    for luma, chroma, resize, crop in GEOMETRIES:
        y, u, v = planes(*luma, *chroma, padding=5)
        got = frame_resize(y, u, v, affine, resize, crop, backend="cpu")
        diff = (got.int() - frame_resize_reference(y, u, v, affine, resize, crop).int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01
        normalized = frame_resize(y, u, v, affine, resize, crop, normalize=(S3D_MEAN, S3D_STD), backend="cpu")
        torch.testing.assert_close(normalized, normalize_clips(got[None]).movedim(-4, -1)[0], atol=1e-5, rtol=0)


def test_alternating_geometries_in_one_thread():
    """The kernel caches its filters per plane geometry (a few per thread): frames of six geometries
    in turn, some sharing a luma size but not a chroma size, must each get their own."""
    geometries = [((60, 80), (30, 40)), ((60, 80), (60, 80)), ((50, 70), (25, 35)), ((61, 81), (31, 41)),
                  ((60, 80), (60, 40)), ((33, 44), (17, 22))]
    affine = yuv_to_rgb_affine()
    for i in range(3 * len(geometries)):
        luma, chroma = geometries[i % len(geometries)]
        y, u, v = planes(*luma, *chroma, seed=i)
        got = frame_resize(y, u, v, affine, (40, 40), (4, 4, 32, 32), backend="cpu")
        expected = frame_resize_reference(y, u, v, affine, (40, 40), (4, 4, 32, 32))
        assert (got.int() - expected.int()).abs().max() <= 1


def test_out_argument_and_backend_choice():
    y, u, v = planes(30, 40, 15, 20)
    affine = yuv_to_rgb_affine()
    out = torch.empty(8, 8, 3, dtype=torch.uint8)
    result = frame_resize(y, u, v, affine, (16, 16), (4, 4, 8, 8), out=out)  # auto: cpu for CPU tensors
    assert result.data_ptr() == out.data_ptr()
    torch.testing.assert_close(frame_resize(y, u, v, affine, (16, 16), (4, 4, 8, 8), backend="reference"), out, atol=1, rtol=0)
    with pytest.raises(ValueError, match=r"out must be a contiguous torch.uint8 \[8, 8, 3\] tensor"):
        frame_resize(y, u, v, affine, (16, 16), (4, 4, 8, 8), out=torch.empty(8, 8, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"out must be a contiguous torch.float32"):
        frame_resize(y, u, v, affine, (16, 16), (4, 4, 8, 8), out=out, normalize=(S3D_MEAN, S3D_STD))


@pytest.mark.parametrize("luma,chroma,resize,crop", GEOMETRIES[:5])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_normalized_output_is_normalize_clips_of_the_levels(luma, chroma, resize, crop, backend):
    """normalize=(mean, std) gives in one pass what normalize_clips gives on the uint8 result."""
    y, u, v = planes(*luma, *chroma, seed=3)
    affine = yuv_to_rgb_affine()
    levels = frame_resize(y, u, v, affine, resize, crop, backend=backend)
    normalized = frame_resize(y, u, v, affine, resize, crop, normalize=(S3D_MEAN, S3D_STD), backend=backend)
    assert normalized.dtype == torch.float32 and normalized.shape == levels.shape
    expected = normalize_clips(levels[None]).movedim(-4, -1)[0]
    torch.testing.assert_close(normalized, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="normalize must be"):
        frame_resize(y, u, v, affine, resize, crop, normalize=((0.5, 0.5), (0.2, 0.2)), backend=backend)


# (Y, U, V) -> RGB of the standards' colour bars (75%/100% levels) and the extremes
KNOWN_COLOURS = [
    ("bt601", False, (16, 128, 128), (0, 0, 0)),
    ("bt601", False, (235, 128, 128), (255, 255, 255)),
    ("bt601", False, (81, 90, 240), (255, 0, 0)),
    ("bt601", False, (145, 54, 34), (0, 255, 0)),
    ("bt709", False, (63, 102, 240), (255, 0, 0)),
    ("bt709", False, (173, 42, 26), (0, 255, 0)),
    ("bt601", True, (0, 128, 128), (0, 0, 0)),
    ("bt601", True, (255, 128, 128), (255, 255, 255)),
    ("bt601", True, (76, 85, 255), (254, 0, 0)),
]


@pytest.mark.parametrize("matrix,full_range,yuv,rgb", KNOWN_COLOURS)
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_colour_matrices_give_known_colours(matrix, full_range, yuv, rgb, backend):
    y, u, v = (torch.full(shape, value, dtype=torch.uint8) for shape, value in zip([(12, 16), (6, 8), (6, 8)], yuv))
    out = frame_resize(y, u, v, yuv_to_rgb_affine(matrix, full_range), (8, 8), (0, 0, 8, 8), backend=backend)
    assert (out.int() - torch.tensor(rgb)).abs().max() <= 2  # the standards' bars are rounded to whole levels


def test_agrees_with_swscale_rgb_then_pytorch_resize(tmp_path):
    """The route the op replaced, on a decoded H.264 frame: swscale's fast conversion truncates, so its
    RGB reads about one level darker (measured 1.2 on average, 3 at most)."""
    path = write_video(tmp_path / "v.mp4", frames=1, width=160, height=90)
    with av.open(path) as container:
        frame = next(container.decode(video=0))
    y, u, v = frame_planes(frame)
    ours = frame_resize(y, u, v, yuv_to_rgb_affine(), (64, 64), (4, 4, 56, 56)).int()
    rgb = torch.from_numpy(VideoReformatter().reformat(frame, format="rgb24").to_ndarray()).permute(2, 0, 1)[None]
    theirs = F.interpolate(rgb, size=(64, 64), mode="bilinear", antialias=True)[0, :, 4:60, 4:60].permute(1, 2, 0).int()
    diff = ours - theirs
    assert 0.5 < diff.float().mean() < 1.5 and diff.abs().float().mean() < 1.5 and diff.abs().max() <= 5


@pytest.mark.parametrize("change,message", [
    (dict(y=torch.zeros(4, 4)), "plane y must be a non-empty uint8"),
    (dict(u=torch.zeros(2, 3, dtype=torch.uint8)), "u and v must have the same shape"),
    (dict(v=torch.zeros(2, 4, dtype=torch.uint8).t()), "plane v must have contiguous rows"),
    (dict(affine=torch.zeros(3, 3)), "affine must be float32"),
    (dict(crop=(0, 0, 9, 8)), "must be non-empty and lie inside the resize"),
    (dict(crop=(-1, 0, 4, 4)), "must be non-empty and lie inside the resize"),
    (dict(resize=(0, 8)), "resize must be positive"),
])
def test_bad_arguments_say_what_is_wrong(change, message):
    y, u, v = planes(4, 4, 2, 2)
    args = dict(y=y, u=u, v=v, affine=yuv_to_rgb_affine(), resize=(8, 8), crop=(0, 0, 8, 8)) | change
    with pytest.raises(ValueError, match=message):
        frame_resize(**args)
    with pytest.raises(ValueError, match="unknown colour matrix"):
        yuv_to_rgb_affine("bt470m")
