// CPU kernel for frame_resize.h.
//
// Resizing the YUV planes and converting only the output pixels to RGB does less work than
// converting every source pixel and resizing three RGB channels: the luma plane is one channel,
// the chroma planes are a quarter of its size (4:2:0), and the colour conversion touches out_h x
// out_w pixels instead of the whole frame. Output rows are made eight at a time (see resize_rows);
// the scratch for them stays in L1/L2. 640x360 4:2:0 -> 224 x 224 of a 256 x 256 resize: 0.11 ms
// on one core, against 0.42 ms for swscale's RGB conversion plus PyTorch's uint8 resize
// (benchmarks/bench_frame_resize.py).
#include "video/frame_resize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <list>
#include <stdexcept>
#include <vector>

#include "cpu_dispatch.h"

namespace videobert {
namespace {

// Antialiased bilinear weights along one axis, exactly as PyTorch computes them
// (aten/src/ATen/native/UpSample.h, _compute_indices_weights_aa) but in double: output i of a
// resize from `in` to `out` samples around center = scale * (i + 0.5) with a triangle filter
// stretched by the scale when downsampling. Only the outputs [start, start + count) are kept.
struct AxisFilter {
  std::vector<int> first;      // first input index of each output
  std::vector<int> taps;       // number of inputs of each output
  std::vector<float> weights;  // [count][max_taps], normalised to sum 1
  int max_taps = 0;
};

AxisFilter antialiased_bilinear(int in, int out, int start, int count) {
  const double scale = double(in) / out;
  const double support = scale >= 1.0 ? scale : 1.0;
  const double inv_scale = scale >= 1.0 ? 1.0 / scale : 1.0;
  AxisFilter f;
  f.max_taps = int(std::ceil(support)) * 2 + 1;
  f.first.resize(count);
  f.taps.resize(count);
  f.weights.assign(size_t(count) * f.max_taps, 0.0f);
  std::vector<double> w(f.max_taps);
  for (int i = 0; i < count; ++i) {
    const double center = scale * (start + i + 0.5);
    const int64_t lo = std::max<int64_t>(int64_t(center - support + 0.5), 0);
    const int64_t n = std::min<int64_t>(int64_t(center + support + 0.5), in) - lo;
    double total = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      w[j] = std::max(0.0, 1.0 - std::fabs((j + lo - center + 0.5) * inv_scale));
      total += w[j];
    }
    f.first[i] = int(lo);
    f.taps[i] = int(n);
    for (int64_t j = 0; j < n; ++j) f.weights[size_t(i) * f.max_taps + j] = float(total != 0.0 ? w[j] / total : 0.0);
  }
  return f;
}

// Output rows are made kRows at a time. The vertical pass blends the source rows under each of
// them into a float row (contiguous, vectorised); kRows x kRows tiles of those rows are then
// transposed, leaving the result column-interleaved (element c of the kRows rows side by side), so
// the horizontal pass runs tap by tap on whole vectors of kRows rows, with no gathers, and so does
// the colour conversion, which transposes back to write RGB rows. Measured slower: a per-row
// horizontal pass (scalar taps, 0.23 ms a frame; as dense windows of weights, three times the
// multiply-adds, 0.20 ms) and a vertical pass reading bytes straight into tiles (GCC converts
// 8-byte vectors lane by lane).
constexpr int kRows = 8;
// Element alignment only: the buffers are std::vector<float>, so loads and stores must not assume
// the vector's own 32-byte alignment.
typedef float rows_t __attribute__((vector_size(kRows * sizeof(float)), aligned(alignof(float))));
typedef int32_t ints_t __attribute__((vector_size(kRows * sizeof(int32_t))));
typedef uint8_t bytes8_t __attribute__((vector_size(kRows)));
typedef uint8_t bytes16_t __attribute__((vector_size(16)));

// In-place transpose of an 8 x 8 tile held as 8 vectors.
VB_INLINE void transpose(rows_t v[kRows]) {
  static_assert(kRows == 8, "the shuffles below are for 8 x 8 tiles");
  typedef int32_t mask_t __attribute__((vector_size(32)));
  const mask_t lo2{0, 8, 1, 9, 4, 12, 5, 13}, hi2{2, 10, 3, 11, 6, 14, 7, 15};
  const mask_t lo4{0, 1, 8, 9, 4, 5, 12, 13}, hi4{2, 3, 10, 11, 6, 7, 14, 15};
  const mask_t lo8{0, 1, 2, 3, 8, 9, 10, 11}, hi8{4, 5, 6, 7, 12, 13, 14, 15};
  rows_t t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(v[i], v[i + 1], lo2);
    t[i + 1] = __builtin_shuffle(v[i], v[i + 1], hi2);
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = __builtin_shuffle(t[i], t[i + 2], lo4);
    s[i + 1] = __builtin_shuffle(t[i], t[i + 2], hi4);
    s[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], lo4);
    s[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], hi4);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = __builtin_shuffle(s[i], s[i + 4], lo8);
    v[i + 4] = __builtin_shuffle(s[i], s[i + 4], hi8);
  }
}

// One plane's filters, and the span of source columns its output columns read.
struct PlaneFilter {
  AxisFilter rows, cols;
  int col_lo = 0, col_hi = 0;
};

PlaneFilter plane_filter(const Plane& p, int resize_h, int resize_w, int top, int left, int out_h, int out_w) {
  PlaneFilter f{antialiased_bilinear(p.height, resize_h, top, out_h), antialiased_bilinear(p.width, resize_w, left, out_w)};
  f.col_lo = f.cols.first[0];
  f.col_hi = 0;
  for (int j = 0; j < out_w; ++j) {  // the first index is monotonic, the last need not be
    f.col_lo = std::min(f.col_lo, f.cols.first[j]);
    f.col_hi = std::max(f.col_hi, f.cols.first[j] + f.cols.taps[j]);
  }
  return f;
}

// The filters of one plane geometry, computed once per thread: a video's frames all share them.
// A small least-recently-used list; std::list keeps references valid when entries move or others
// are dropped, and a hit moves to the back, so the luma entry a call holds is never the one its
// chroma lookup evicts.
const PlaneFilter& cached_filter(const Plane& p, int resize_h, int resize_w, int top, int left, int out_h, int out_w) {
  struct Entry {
    std::array<int, 8> key;
    PlaneFilter filter;
  };
  thread_local std::list<Entry> cache;
  const std::array<int, 8> key{p.width, p.height, resize_h, resize_w, top, left, out_h, out_w};
  for (auto it = cache.begin(); it != cache.end(); ++it) {
    if (it->key == key) {
      cache.splice(cache.end(), cache, it);
      return it->filter;
    }
  }
  if (cache.size() == 4) cache.pop_front();
  cache.push_back(Entry{key, plane_filter(p, resize_h, resize_w, top, left, out_h, out_w)});
  return cache.back().filter;
}

// Output rows [i0, i0 + kRows) of plane p into dst[out_w] (column-interleaved; rows past out_h
// repeat the last one). blend: kRows * (col_hi - col_lo) floats of scratch; columns:
// col_hi - col_lo vectors.
template <Isa>
VB_INLINE void resize_rows_impl(const Plane& p, const PlaneFilter& f, int i0, int out_h, float* blend, rows_t* columns,
                                rows_t* dst, int out_w) {
  const int lo = f.col_lo, width = f.col_hi - f.col_lo;
  for (int r = 0; r < kRows; ++r) {
    const int i = std::min(i0 + r, out_h - 1);
    const uint8_t* src = p.data + f.rows.first[i] * p.stride + lo;
    const float* w = &f.rows.weights[size_t(i) * f.rows.max_taps];
    float* b = blend + r * width;
    for (int c = 0; c < width; ++c) b[c] = w[0] * float(src[c]);
    for (int k = 1; k < f.rows.taps[i]; ++k) {
      src += p.stride;
      const float wk = w[k];
      for (int c = 0; c < width; ++c) b[c] += wk * float(src[c]);
    }
  }
  int c = 0;
  for (; c + kRows <= width; c += kRows) {
    rows_t tile[kRows];
    for (int r = 0; r < kRows; ++r) std::memcpy(&tile[r], blend + r * width + c, sizeof(rows_t));
    transpose(tile);
    for (int r = 0; r < kRows; ++r) columns[c + r] = tile[r];
  }
  for (; c < width; ++c)
    for (int r = 0; r < kRows; ++r) columns[c][r] = blend[r * width + c];
  for (int j = 0; j < out_w; ++j) {
    const rows_t* x = columns + (f.cols.first[j] - lo);
    const float* wc = &f.cols.weights[size_t(j) * f.cols.max_taps];
    rows_t sum = wc[0] * x[0];
    for (int k = 1; k < f.cols.taps[j]; ++k) sum += wc[k] * x[k];
    dst[j] = sum;
  }
}

VB_ISA_VARIANTS(resize_rows, (const Plane& p, const PlaneFilter& f, int i0, int out_h, float* blend, rows_t* columns,
                              rows_t* dst, int out_w),
                (p, f, i0, out_h, blend, columns, dst, out_w))

// Channel c of the affine colour map on column-interleaved Y, U, V, clamped to [0, 255] and
// offset by 0.5 so that truncating rounds half up.
VB_INLINE rows_t channel(const float* m, int c, const rows_t& y, const rows_t& u, const rows_t& v) {
  const rows_t zero{}, top = zero + 255.5f;
  rows_t x = m[4 * c] * y + m[4 * c + 1] * u + m[4 * c + 2] * v + (m[4 * c + 3] + 0.5f);
  x = x < 0.5f ? zero + 0.5f : x;
  return x > top ? top : x;
}

// One output row's 8-column tile, given as the rounded levels of R, G and B, stored interleaved:
// each pixel packed into one int32 (R | G << 8 | B << 16), then one byte shuffle drops every
// fourth byte. (Building the bytes from 8-byte vectors went through the stack: 1.4x slower.)
VB_INLINE void store_tile(uint8_t* o, const ints_t& red, const ints_t& green, const ints_t& blue, const float*) {
  typedef uint8_t bytes32_t __attribute__((vector_size(32)));
  const ints_t packed = red | (green << 8) | (blue << 16);
  bytes32_t bytes;
  std::memcpy(&bytes, &packed, sizeof(bytes));
  const bytes32_t rgb = __builtin_shuffle(bytes, bytes32_t{0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 18, 20,
                                                           21, 22, 24, 25, 26, 28, 29, 30, 0, 0, 0, 0, 0, 0, 0, 0});
  std::memcpy(o, &rgb, 24);
}

// The same as float32 level * norm[c] + norm[3 + c] (normalised for a network).
VB_INLINE void store_tile(float* o, const ints_t& red, const ints_t& green, const ints_t& blue, const float* norm) {
  typedef int32_t mask_t __attribute__((vector_size(32)));
  const rows_t r = __builtin_convertvector(red, rows_t) * norm[0] + norm[3];
  const rows_t g = __builtin_convertvector(green, rows_t) * norm[1] + norm[4];
  const rows_t b = __builtin_convertvector(blue, rows_t) * norm[2] + norm[5];
  // r0 g0 b0 r1 g1 b1 r2 g2 | b2 r3 g3 b3 r4 g4 b4 r5 | g5 b5 r6 g6 b6 r7 g7 b7: red and green
  // placed first (0 marks a slot blue fills), then blue (indices 8-15)
  const rows_t out[3] = {
      __builtin_shuffle(__builtin_shuffle(r, g, mask_t{0, 8, 0, 1, 9, 0, 2, 10}), b, mask_t{0, 1, 8, 3, 4, 9, 6, 7}),
      __builtin_shuffle(__builtin_shuffle(r, g, mask_t{0, 3, 11, 0, 4, 12, 0, 5}), b, mask_t{10, 1, 2, 11, 4, 5, 12, 7}),
      __builtin_shuffle(__builtin_shuffle(r, g, mask_t{13, 0, 6, 14, 0, 7, 15, 0}), b, mask_t{0, 13, 2, 3, 14, 5, 6, 15}),
  };
  std::memcpy(o, out, sizeof(out));
}

VB_INLINE void store_pixel(uint8_t* o, int level, const float*, int) { *o = uint8_t(level); }
VB_INLINE void store_pixel(float* o, int level, const float* norm, int c) { *o = float(level) * norm[c] + norm[3 + c]; }

// rows (<= kRows) output rows of RGB from the column-interleaved Y, U, V results: each 8-column
// tile is transposed back to rows and stored interleaved (bytes, or normalised floats).
template <typename T>
VB_INLINE void to_rgb_rows(const rows_t* y, const rows_t* u, const rows_t* v, const float* m, const float* norm, T* out,
                           int64_t out_stride, int rows, int out_w) {
  int j = 0;
  for (; j + kRows <= out_w; j += kRows) {
    rows_t rgb[3][kRows];
    for (int c = 0; c < 3; ++c) {
      for (int k = 0; k < kRows; ++k) rgb[c][k] = channel(m, c, y[j + k], u[j + k], v[j + k]);
      transpose(rgb[c]);
    }
    for (int r = 0; r < rows; ++r)
      store_tile(out + r * out_stride + 3 * j, __builtin_convertvector(rgb[0][r], ints_t),
                 __builtin_convertvector(rgb[1][r], ints_t), __builtin_convertvector(rgb[2][r], ints_t), norm);
  }
  for (; j < out_w; ++j) {
    for (int c = 0; c < 3; ++c) {
      const rows_t x = channel(m, c, y[j], u[j], v[j]);
      for (int r = 0; r < rows; ++r) store_pixel(out + r * out_stride + 3 * j + c, int(x[r]), norm, c);
    }
  }
}

template <Isa>
VB_INLINE void to_rgb_bytes_impl(const rows_t* y, const rows_t* u, const rows_t* v, const float* m, uint8_t* out,
                                 int64_t out_stride, int rows, int out_w) {
  to_rgb_rows(y, u, v, m, nullptr, out, out_stride, rows, out_w);
}
VB_ISA_VARIANTS(to_rgb_bytes, (const rows_t* y, const rows_t* u, const rows_t* v, const float* m, uint8_t* out,
                               int64_t out_stride, int rows, int out_w),
                (y, u, v, m, out, out_stride, rows, out_w))

template <Isa>
VB_INLINE void to_rgb_floats_impl(const rows_t* y, const rows_t* u, const rows_t* v, const float* m, const float* norm,
                                  float* out, int64_t out_stride, int rows, int out_w) {
  to_rgb_rows(y, u, v, m, norm, out, out_stride, rows, out_w);
}
VB_ISA_VARIANTS(to_rgb_floats, (const rows_t* y, const rows_t* u, const rows_t* v, const float* m, const float* norm,
                                float* out, int64_t out_stride, int rows, int out_w),
                (y, u, v, m, norm, out, out_stride, rows, out_w))

// The whole op in the ISA variant `isa`, writing with to_rgb (bytes or floats).
template <typename ToRgb>
void resize_frame(Isa isa, const Plane& y, const Plane& u, const Plane& v, int resize_h, int resize_w, int top, int left,
                  int out_h, int out_w, ToRgb to_rgb) {
  if (out_h <= 0 || out_w <= 0) return;
  if (top < 0 || left < 0 || top + out_h > resize_h || left + out_w > resize_w)
    throw std::invalid_argument("frame_resize: the crop lies outside the resized frame");
  const Plane planes[3] = {y, u, v};
  const PlaneFilter* filters[3];
  int width = 0;
  for (int p = 0; p < 3; ++p) {
    if (planes[p].width <= 0 || planes[p].height <= 0) throw std::invalid_argument("frame_resize: empty plane");
    filters[p] = &cached_filter(planes[p], resize_h, resize_w, top, left, out_h, out_w);
    width = std::max(width, filters[p]->col_hi - filters[p]->col_lo);
  }
  std::vector<float> blend(size_t(width) * kRows), column_buffer(size_t(width) * kRows),
      resized_buffer(size_t(3) * out_w * kRows);
  rows_t* columns = reinterpret_cast<rows_t*>(column_buffer.data());
  rows_t* resized = reinterpret_cast<rows_t*>(resized_buffer.data());
  for (int i0 = 0; i0 < out_h; i0 += kRows) {
    for (int p = 0; p < 3; ++p)
      VB_ISA_CALL(isa, resize_rows, (planes[p], *filters[p], i0, out_h, blend.data(), columns, resized + p * out_w, out_w));
    to_rgb(resized, i0, std::min(kRows, out_h - i0));
  }
}

}  // namespace

void frame_resize_cpu(const Plane& y, const Plane& u, const Plane& v, int resize_h, int resize_w,
                      int top, int left, int out_h, int out_w, const float* affine, uint8_t* out,
                      int64_t out_stride) {
  const Isa isa = selected_isa();
  resize_frame(isa, y, u, v, resize_h, resize_w, top, left, out_h, out_w, [&](const rows_t* yuv, int i0, int rows) {
    VB_ISA_CALL(isa, to_rgb_bytes, (yuv, yuv + out_w, yuv + 2 * out_w, affine, out + i0 * out_stride, out_stride, rows, out_w));
  });
}

void frame_resize_normalized_cpu(const Plane& y, const Plane& u, const Plane& v, int resize_h, int resize_w,
                                 int top, int left, int out_h, int out_w, const float* affine,
                                 const float* norm, float* out, int64_t out_stride) {
  const Isa isa = selected_isa();
  resize_frame(isa, y, u, v, resize_h, resize_w, top, left, out_h, out_w, [&](const rows_t* yuv, int i0, int rows) {
    VB_ISA_CALL(isa, to_rgb_floats, (yuv, yuv + out_w, yuv + 2 * out_w, affine, norm, out + i0 * out_stride, out_stride,
                                     rows, out_w));
  });
}

}  // namespace videobert
