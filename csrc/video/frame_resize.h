// YUV frame -> RGB, resized and cropped: the per-frame conversion of video decoding (see
// videobert/ops/frame_resize.py for the specification and its PyTorch reference). Raw pointers and
// sizes only (no torch), so the build needs no torch.
#pragma once
#include <cstdint>

namespace videobert {

// One 8-bit YUV plane: `height` rows of `width` bytes, rows `stride` bytes apart.
struct Plane {
  const uint8_t* data;
  int64_t stride;
  int width;
  int height;
};

// Each plane (luma and the two chroma planes, any subsampling) is resized on its own to
// resize_h x resize_w with PyTorch's antialiased bilinear filter (F.interpolate(mode="bilinear",
// antialias=True, align_corners=False)); only the rows [top, top + out_h) and columns
// [left, left + out_w) of that resize are computed. Each pixel then becomes RGB through the affine
// map rgb[c] = affine[4c] * Y + affine[4c+1] * U + affine[4c+2] * V + affine[4c+3], rounded half up
// and clamped to [0, 255]. out: [out_h, out_w, 3] uint8, rows out_stride bytes apart.
void frame_resize_cpu(const Plane& y, const Plane& u, const Plane& v, int resize_h, int resize_w,
                      int top, int left, int out_h, int out_w, const float* affine, uint8_t* out,
                      int64_t out_stride);

// The same, written as float32 normalised for a network: level * norm[c] + norm[3 + c] for the
// rounded level (0-255) of channel c. out: [out_h, out_w, 3] float32, rows out_stride floats apart.
void frame_resize_normalized_cpu(const Plane& y, const Plane& u, const Plane& v, int resize_h, int resize_w,
                                 int top, int left, int out_h, int out_w, const float* affine,
                                 const float* norm, float* out, int64_t out_stride);

}  // namespace videobert
