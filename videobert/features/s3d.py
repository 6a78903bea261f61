"""S3D (Xie et al., 2018, "Rethinking Spatiotemporal Feature Learning"), laid out exactly as
torchvision's ``torchvision.models.video.s3d`` so that its Kinetics-400 weights
(``s3d-d76dad2f.pth``, 8,320,048 parameters) load strictly by name.

torchvision itself is not a dependency: the modules below reproduce its layout (module names,
nesting, parameter shapes, BatchNorm eps/momentum), which is what the state dict depends on.
"""

from __future__ import annotations

import copy
import os
from functools import partial
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

NUM_PARAMETERS = 8_320_048  # torchvision's S3D with the 400-class Kinetics classifier
FEATURE_DIM = 1024


class Conv3dNormActivation(nn.Sequential):
    """Conv3d (no bias) -> norm -> ReLU, named ``0``, ``1``, ``2`` like torchvision.ops.misc's."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size, stride=1, padding=None,
                 norm_layer: Callable[..., nn.Module] = nn.BatchNorm3d):
        kernel_size = _triple(kernel_size)
        if padding is None:
            padding = tuple((k - 1) // 2 for k in kernel_size)
        super().__init__(
            nn.Conv3d(in_planes, out_planes, kernel_size, stride=stride, padding=padding, bias=False),
            norm_layer(out_planes),
            nn.ReLU(inplace=True),
        )


def _triple(value) -> tuple[int, int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value, value)


class TemporalSeparableConv(nn.Sequential):
    """A k x k x k conv factored into 1 x k x k (space) then k x 1 x 1 (time)."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, stride: int, padding: int,
                 norm_layer: Callable[..., nn.Module]):
        super().__init__(
            Conv3dNormActivation(in_planes, out_planes, (1, kernel_size, kernel_size), stride=(1, stride, stride),
                                 padding=(0, padding, padding), norm_layer=norm_layer),
            Conv3dNormActivation(out_planes, out_planes, (kernel_size, 1, 1), stride=(stride, 1, 1),
                                 padding=(padding, 0, 0), norm_layer=norm_layer),
        )


class SepInceptionBlock3D(nn.Module):
    """Inception block with four branches (1x1; 1x1 -> sep 3x3; 1x1 -> sep 3x3; pool -> 1x1)."""

    def __init__(self, in_planes: int, b0_out: int, b1_mid: int, b1_out: int, b2_mid: int, b2_out: int,
                 b3_out: int, norm_layer: Callable[..., nn.Module]):
        super().__init__()
        self.branch0 = Conv3dNormActivation(in_planes, b0_out, 1, norm_layer=norm_layer)
        self.branch1 = nn.Sequential(
            Conv3dNormActivation(in_planes, b1_mid, 1, norm_layer=norm_layer),
            TemporalSeparableConv(b1_mid, b1_out, 3, 1, 1, norm_layer),
        )
        self.branch2 = nn.Sequential(
            Conv3dNormActivation(in_planes, b2_mid, 1, norm_layer=norm_layer),
            TemporalSeparableConv(b2_mid, b2_out, 3, 1, 1, norm_layer),
        )
        self.branch3 = nn.Sequential(
            nn.MaxPool3d(kernel_size=3, stride=1, padding=1),
            Conv3dNormActivation(in_planes, b3_out, 1, norm_layer=norm_layer),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class S3D(nn.Module):
    """S3D video network. Input ``[n, 3, T, H, W]`` float, normalised as
    :data:`videobert.video.preprocess.S3D_MEAN` / ``S3D_STD`` describe.

    ``forward`` gives Kinetics logits ``[n, num_classes]`` (needs H, W >= 224-ish, as torchvision);
    :meth:`embed` gives VideoBERT's clip feature ``[n, 1024]`` at any input size.
    """

    def __init__(self, num_classes: int = 400, dropout: float = 0.2):
        super().__init__()
        norm = partial(nn.BatchNorm3d, eps=0.001, momentum=0.001)
        self.features = nn.Sequential(
            TemporalSeparableConv(3, 64, 7, 2, 3, norm),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            Conv3dNormActivation(64, 64, 1, norm_layer=norm),
            TemporalSeparableConv(64, 192, 3, 1, 1, norm),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            SepInceptionBlock3D(192, 64, 96, 128, 16, 32, 32, norm),
            SepInceptionBlock3D(256, 128, 128, 192, 32, 96, 64, norm),
            nn.MaxPool3d(kernel_size=(3, 3, 3), stride=(2, 2, 2), padding=(1, 1, 1)),
            SepInceptionBlock3D(480, 192, 96, 208, 16, 48, 64, norm),
            SepInceptionBlock3D(512, 160, 112, 224, 24, 64, 64, norm),
            SepInceptionBlock3D(512, 128, 128, 256, 24, 64, 64, norm),
            SepInceptionBlock3D(512, 112, 144, 288, 32, 64, 64, norm),
            SepInceptionBlock3D(528, 256, 160, 320, 32, 128, 128, norm),
            nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0)),
            SepInceptionBlock3D(832, 256, 160, 320, 32, 128, 128, norm),
            SepInceptionBlock3D(832, 384, 192, 384, 48, 128, 128, norm),
        )
        self.avgpool = nn.AvgPool3d(kernel_size=(2, 7, 7), stride=1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Conv3d(FEATURE_DIM, num_classes, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Kinetics logits ``[n, num_classes]``, exactly as torchvision computes them."""
        x = self.classifier(self.avgpool(self.features(x)))
        return torch.mean(x, dim=(2, 3, 4))

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        """Clip features ``[n, 1024]``: the last block's output averaged over time and space,
        before the classifier. ``clips``: ``[n, 3, T, H, W]`` with T >= 8 and H, W >= 32 (the
        network downsamples time by 8 and space by 32 before its last pooling)."""
        if clips.ndim != 5 or clips.shape[1] != 3:
            raise ValueError(f"S3D.embed expects clips [n, 3, T, H, W], got shape {tuple(clips.shape)}")
        if clips.shape[2] < 8 or min(clips.shape[3:]) < 32:
            raise ValueError(f"S3D.embed needs T >= 8 frames and H, W >= 32 pixels, got {tuple(clips.shape)}")
        # channels_last_3d: about 2x faster on the CPU (see normalize_clips) and what cuDNN prefers;
        # free when the clips come from normalize_clips already in that layout
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
        return torch.mean(self.features(clips), dim=(2, 3, 4))

    def with_batchnorm_folded(self) -> "S3D":
        """A copy for inference with every BatchNorm (its running statistics) folded into the
        convolution before it: the same outputs up to float rounding, without the 77 BatchNorm
        passes over the activations (1.29x faster on the CPU, benchmarks/bench_s3d.py). The copy
        is in eval mode and its state dict no longer has torchvision's keys: keep the original to
        save or fine-tune."""
        folded = copy.deepcopy(self).eval()
        for module in folded.modules():
            if isinstance(module, Conv3dNormActivation) and isinstance(module[1], nn.BatchNorm3d):
                module[0] = fuse_conv_bn_eval(module[0], module[1])
                module[1] = nn.Identity()
        return folded

    @classmethod
    def from_file(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "S3D":
        """Load torchvision-layout S3D weights (``.pth`` / ``.pt`` state dict, or ``.safetensors``)
        strictly; a file that does not match the layout raises ``ValueError`` naming the keys."""
        state = load_state_dict_file(path, map_location)
        classifier = state.get("classifier.1.weight")
        num_classes = int(classifier.shape[0]) if classifier is not None and classifier.ndim == 5 else 400
        model = cls(num_classes=num_classes)
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong_shape = sorted(f"{k}: file {tuple(state[k].shape)} vs S3D {tuple(v.shape)}"
                             for k, v in expected.items() if k in state and state[k].shape != v.shape)
        if missing or unexpected or wrong_shape:
            raise ValueError(
                f"{path}: not a torchvision S3D state dict: {len(missing)} missing key(s) {missing[:5]}, "
                f"{len(unexpected)} unexpected key(s) {unexpected[:5]}, "
                f"{len(wrong_shape)} shape mismatch(es) {wrong_shape[:5]}")
        model.load_state_dict(state, strict=True)
        return model.eval()


def load_state_dict_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch pickle (loaded with ``weights_only``);
    a checkpoint wrapping it under ``state_dict`` / ``model`` is unwrapped."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"S3D weights file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path, device=str(map_location))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle errors come in many types
        raise ValueError(f"{path}: cannot read S3D weights ({type(exc).__name__}: {exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state
