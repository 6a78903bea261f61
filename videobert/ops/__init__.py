"""Performance-critical ops. Each has a plain PyTorch reference (the specification) and fast
backends chosen by the tensors' device (``backend="auto"``) or by name."""

from videobert.ops.backends import available_backends
from videobert.ops.frame_resize import frame_resize, yuv_to_rgb_affine
from videobert.ops.hkmeans import centroid_update, hkmeans_assign
from videobert.ops.masked_token_loss import masked_token_loss

__all__ = ["available_backends", "frame_resize", "yuv_to_rgb_affine", "hkmeans_assign", "centroid_update", "masked_token_loss"]
