// CPU kernels for hierarchical k-means (see hkmeans.h).
//
// Assignment descends blocks of vectors through several levels while the block is in cache (a
// "stage", 2 levels for 12 children at D=1024): the first stage takes consecutive vectors, later
// stages take the vectors grouped by the node they reached (a counting sort), so a block shares one
// subtree and its centroids stay in cache too. Inside a block each level groups the vectors by
// parent, and a tile of R vectors of one parent against its children is a small GEMM: the
// micro-kernel computes the dot products of R vectors with up to C children at once in SIMD
// registers (GCC/Clang vector extensions). R, C and the vector width are chosen per ISA (Tile<I>) so
// that the R x C accumulators, the R vector rows and one centroid row fit the register file:
// AVX-512 4 x 6 of 16 floats (24 + 4 + 1 of 32 zmm), AVX2 2 x 6 of 8 floats (12 + 2 + 1 of 16 ymm;
// 16-float vectors there spill, and on Zen 1 every 256-bit operation is two 128-bit halves),
// baseline SSE 2 x 6 of 4 floats (12 + 2 + 1 of 16 xmm). For AVX2, 2 x 6 measured 2.4x faster than
// 3 x 4 and 4 x 3 (the same 12 accumulators) on an AVX-512 machine forced to its AVX2 variant. The hot function is compiled once per
// variant (cpu_dispatch.h) and the CPU's best, or VIDEOBERT_ISA's, runs, so a wheel built on one
// machine runs on any x86-64 machine.
#include "hkmeans.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cpu_dispatch.h"

namespace videobert {
namespace {

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

// The micro-kernel's shape per ISA: vector type V, R vectors per tile (all from the same node), C
// children per pass.
template <Isa I> struct Tile;
template <> struct Tile<Isa::kAvx512> { typedef v16 V; static constexpr int R = 4, C = 6; };
template <> struct Tile<Isa::kAvx2> { typedef v8 V; static constexpr int R = 2, C = 6; };
template <> struct Tile<Isa::kBaseline> { typedef v4 V; static constexpr int R = 2, C = 6; };
constexpr int kMaxRows = 4;  // the largest R

int64_t ipow(int64_t base, int exponent) {
  int64_t p = 1;
  while (exponent-- > 0) p *= base;
  return p;
}

// Sum of the lanes in one fixed order (halves added pairwise: 16 -> 8 -> 4 -> 2 -> 1), so equal
// inputs always give equal sums; written on half-width vectors so it compiles to a few SIMD adds.
VB_INLINE float lane_sum(const v4& v) { return (v[0] + v[2]) + (v[1] + v[3]); }

template <typename Half, typename Whole>
VB_INLINE Half halves_sum(const Whole& v) {
  Half a, b;
  std::memcpy(&a, &v, sizeof(a));
  std::memcpy(&b, reinterpret_cast<const char*>(&v) + sizeof(a), sizeof(b));
  return a + b;
}
VB_INLINE float lane_sum(const v8& v) { return lane_sum(halves_sum<v4>(v)); }
VB_INLINE float lane_sum(const v16& v) { return lane_sum(halves_sum<v8>(v)); }

// out[r*C + c] = dot(x[r], cent[c]) for R vectors and C consecutive centroid rows of length d.
// Every (r, c) pair is computed by the same sequence of operations, whatever R, C and the slot,
// so identical centroids give bit-identical scores (ties then resolve to the lower index).
template <typename V, int R, int C>
VB_INLINE void dot_block(const float* const* x, const float* cent, int64_t d, float* out) {
  constexpr int64_t W = sizeof(V) / sizeof(float);
  V acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = V{};
  int64_t k = 0;
  for (; k + W <= d; k += W) {
    V xv[R];
    for (int r = 0; r < R; ++r) std::memcpy(&xv[r], x[r] + k, sizeof(V));
    for (int c = 0; c < C; ++c) {
      V cv;
      std::memcpy(&cv, cent + c * d + k, sizeof(V));
      for (int r = 0; r < R; ++r) acc[r][c] += xv[r] * cv;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = lane_sum(acc[r][c]);
      for (int64_t kk = k; kk < d; ++kk) s += x[r][kk] * cent[c * d + kk];
      out[r * C + c] = s;
    }
}

// dot_block<V, R, cn> for a run-time cn in [1, C].
template <typename V, int R, int C>
VB_INLINE void dot_block_upto(int cn, const float* const* x, const float* cent, int64_t d, float* out) {
  if constexpr (C > 1) {
    if (cn < C) return dot_block_upto<V, R, C - 1>(cn, x, cent, d, out);
  }
  dot_block<V, R, C>(x, cent, d, out);
}

template <typename V, int R, int C>
VB_INLINE void dot_children(const float* const* x, const float* cent, int branching, int64_t d,
                            float* dots /* [R, branching] */) {
  float block[R * C];
  for (int c0 = 0; c0 < branching; c0 += C) {
    const int cn = std::min(C, branching - c0);
    dot_block_upto<V, R, C>(cn, x, cent + c0 * d, d, block);
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < cn; ++c) dots[r * branching + c0 + c] = block[r * cn + c];
  }
}

// dot_children<V, rows, C> for a run-time rows in [1, R].
template <typename V, int R, int C>
VB_INLINE void dot_children_upto(int rows, const float* const* x, const float* cent, int branching, int64_t d,
                                 float* dots) {
  if constexpr (R > 1) {
    if (rows < R) return dot_children_upto<V, R - 1, C>(rows, x, cent, branching, d, dots);
  }
  dot_children<V, R, C>(x, cent, branching, d, dots);
}

// Scores of one tile: `rows` vectors x[0..rows) against the `branching` children starting at `cent`;
// best[r] = index of the child with the smallest ||c||^2 - 2 x.c (strict <: ties keep the lower index);
// finite[r] = whether that smallest score is a finite number. A NaN or inf in x makes every dot
// product non-finite (inf * 0 is NaN), so its best score is too: finite[r] is false for every bad row.
template <Isa I>
VB_INLINE void best_children(const float* const* x, int rows, const float* cent, const float* norms,
                             int branching, int64_t d, float* dots, int* best, bool* finite) {
  dot_children_upto<typename Tile<I>::V, Tile<I>::R, Tile<I>::C>(rows, x, cent, branching, d, dots);
  for (int r = 0; r < rows; ++r) {
    int arg = 0;
    float best_score = norms[0] - 2.0f * dots[r * branching];
    for (int c = 1; c < branching; ++c) {
      const float score = norms[c] - 2.0f * dots[r * branching + c];
      if (score < best_score) best_score = score, arg = c;
    }
    best[r] = arg;
    finite[r] = std::isfinite(best_score);
  }
}

struct Descent {
  const float* x;
  int64_t d, ldx;
  const float* centroids;
  const float* norms;
  const int64_t* level_offset;  // first row of each level
  int levels, branching;
  int64_t* path;
  uint8_t* suspect;  // per vector: 1 where a best score was not finite (see mark_bad_rows)

  int64_t node(int64_t i, int level) const { return level < 0 ? 0 : path[i * levels + level]; }
};

// Descends the vectors ids[0..count) through levels [first, last). The block is small enough to
// stay in cache across those levels, so each vector is read from memory once per stage. At every
// level the block is grouped by parent node (a stable sort of a few hundred keys) and each group
// is cut into tiles of Tile<I>::R vectors that share their parent's children.
template <Isa I>
VB_INLINE void descend_block_impl(const Descent& t, const int64_t* ids, int64_t count, int first, int last,
                                  std::vector<std::pair<int64_t, int64_t>>& keys, std::vector<float>& dots) {
  constexpr int kRows = Tile<I>::R;
  const int B = t.branching;
  for (int level = first; level < last; ++level) {
    keys.resize(count);
    for (int64_t j = 0; j < count; ++j) keys[j] = {t.node(ids[j], level - 1), ids[j]};
    std::sort(keys.begin(), keys.end());  // (parent, id) pairs are unique: the order is deterministic
    const float* level_cent = t.centroids + t.level_offset[level] * t.d;
    const float* level_norms = t.norms + t.level_offset[level];
    for (int64_t begin = 0; begin < count;) {
      const int64_t parent = keys[begin].first;
      int rows = 1;
      while (rows < kRows && begin + rows < count && keys[begin + rows].first == parent) ++rows;
      const float* x[kRows];
      for (int r = 0; r < rows; ++r) x[r] = t.x + keys[begin + r].second * t.ldx;
      int best[kRows];
      bool finite[kRows];
      best_children<I>(x, rows, level_cent + parent * B * t.d, level_norms + parent * B, B, t.d, dots.data(), best,
                       finite);
      for (int r = 0; r < rows; ++r) {
        const int64_t i = keys[begin + r].second;
        t.path[i * t.levels + level] = parent * B + best[r];
        if (!finite[r]) t.suspect[i] = 1;
      }
      begin += rows;
    }
  }
}

VB_ISA_VARIANTS(descend_block, (const Descent& t, const int64_t* ids, int64_t count, int first, int last,
                                std::vector<std::pair<int64_t, int64_t>>& keys, std::vector<float>& dots),
                (t, ids, count, first, last, keys, dots))

// Rows holding NaN or inf get -1 at every level: the callers' sign of bad input, found without a
// pass of its own over the matrix (an element-wise check costs 3.5x the descent, a row-sum check
// 12% of it). Only the suspects, rows whose best score was not finite at some level, are read
// again; a suspect can also be a finite row whose float32 dot products overflow, and keeps its path.
void mark_bad_rows(const Descent& t, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!t.suspect[i]) continue;
    const float* row = t.x + i * t.ldx;
    if (std::all_of(row, row + t.d, [](float v) { return std::isfinite(v); })) continue;
    std::fill(t.path + i * t.levels, t.path + (i + 1) * t.levels, int64_t{-1});
  }
}

constexpr int64_t kBlockBytes = 512 << 10;  // vectors descended together: half of a 1 MiB L2
constexpr int64_t kRowsPerNode = 8;  // least expected vectors per node at a stage's last level

}  // namespace

void hkmeans_assign_cpu(const float* x, int64_t n, int64_t d, int64_t ldx, const float* centroids,
                        const float* centroid_norms, int levels, int branching, int64_t* path,
                        int num_threads) {
  if (n <= 0 || levels <= 0) return;
  if (num_threads <= 0) num_threads = omp_get_max_threads();
  std::vector<int64_t> level_offset(levels + 1, 0);
  for (int l = 0; l < levels; ++l) level_offset[l + 1] = level_offset[l] + ipow(branching, l + 1);
  std::vector<uint8_t> suspect(n, 0);
  const Descent tree{x, d, ldx, centroids, centroid_norms, level_offset.data(), levels, branching, path, suspect.data()};

  // A stage is as many levels as a block can descend while its last level still gives each node
  // about kRowsPerNode vectors (mostly full tiles): 2 levels for 12 children and D=1024 (128-vector
  // blocks), so the feature matrix is read twice for 4 levels instead of once per level.
  // (At most 1024 vectors, so small D still gives enough blocks to balance the threads.)
  const int64_t block_rows = std::clamp<int64_t>(kBlockBytes / (d * int64_t(sizeof(float))), kMaxRows * kRowsPerNode, 1024);
  const Isa isa = selected_isa();
  int depth = 1;
  while (depth < levels && ipow(branching, depth) * kRowsPerNode <= block_rows) ++depth;

  std::vector<int64_t> order(n), count, items;
  for (int first = 0; first < levels; first += depth) {
    const int last = std::min(levels, first + depth);
    // Group the vectors by the node they reached before this stage (counting sort, stable), so a
    // block shares its subtree, then cut every group into blocks of at most block_rows.
    const int64_t groups = first == 0 ? 1 : ipow(branching, first);
    count.assign(groups + 1, 0);
    for (int64_t i = 0; i < n; ++i) ++count[tree.node(i, first - 1) + 1];
    for (int64_t g = 0; g < groups; ++g) count[g + 1] += count[g];
    items.clear();
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t s = count[g]; s < count[g + 1]; s += block_rows) items.push_back(s);
    items.push_back(n);
    for (int64_t i = 0; i < n; ++i) order[count[tree.node(i, first - 1)]++] = i;
    const int64_t blocks = static_cast<int64_t>(items.size()) - 1;
    // Blocks are independent and every vector's arithmetic is the same whichever thread or tile
    // handles it, so dynamic scheduling balances uneven groups without changing any result.
#pragma omp parallel num_threads(num_threads)
    {
      std::vector<std::pair<int64_t, int64_t>> keys;
      std::vector<float> dots(kMaxRows * branching);
#pragma omp for schedule(dynamic, 1)
      for (int64_t b = 0; b < blocks; ++b)
        VB_ISA_CALL(isa, descend_block, (tree, order.data() + items[b], items[b + 1] - items[b], first, last, keys, dots));
    }
  }
  mark_bad_rows(tree, n);
}

void centroid_update_cpu(const float* x, int64_t n, int64_t d, int64_t ldx, const int64_t* labels,
                         int64_t k, double* sums, int64_t* counts, int num_threads) {
  std::fill(counts, counts + k, 0);
  std::fill(sums, sums + k * d, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= k)
      throw std::out_of_range("centroid_update: label " + std::to_string(labels[i]) + " at row " +
                              std::to_string(i) + " is outside [0, " + std::to_string(k) + ")");
    ++counts[labels[i]];
  }
  if (num_threads <= 0) num_threads = omp_get_max_threads();
  // Threads own disjoint column blocks: no races, and every sum is accumulated in row order.
  constexpr int64_t kCols = 64;
  const int64_t blocks = (d + kCols - 1) / kCols;
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kCols, j1 = std::min(d, j0 + kCols);
    for (int64_t i = 0; i < n; ++i) {
      double* s = sums + labels[i] * d;
      const float* xi = x + i * ldx;
      for (int64_t j = j0; j < j1; ++j) s[j] += xi[j];
    }
  }
}

}  // namespace videobert
