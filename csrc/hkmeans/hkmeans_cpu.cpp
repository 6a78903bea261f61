// CPU kernels for hierarchical k-means (see hkmeans.h).
//
// Assignment descends blocks of vectors through several levels while the block is in cache (a
// "stage", 2 levels for 12 children at D=1024): the first stage takes consecutive vectors, later
// stages take the vectors grouped by the node they reached (a counting sort), so a block shares one
// subtree and its centroids stay in cache too. Inside a block each level groups the vectors by
// parent, and a tile of up to 4 vectors of one parent against its children is a small GEMM: the
// micro-kernel computes the dot products of 4 vectors with up to 6 children at once in SIMD
// registers (GCC/Clang vector extensions, 16 floats wide). On x86-64 the hot function is compiled
// for several ISA levels (target_clones) and the loader picks the best one for the CPU at run time,
// so a wheel built on one machine runs on any x86-64 machine.
#include "hkmeans.h"

#include <omp.h>

#include <algorithm>
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
constexpr int kRows = 4;      // vectors per tile (all from the same node)
constexpr int kChildren = 6;  // children per micro-kernel pass

int64_t ipow(int64_t base, int exponent) {
  int64_t p = 1;
  while (exponent-- > 0) p *= base;
  return p;
}

// Sum of the 16 lanes in one fixed order (halves added pairwise: 16 -> 8 -> 4 -> 2 -> 1), so equal
// inputs always give equal sums; written on half-width vectors so it compiles to a few SIMD adds.
VB_INLINE float lane_sum(const v16& v) {
  v8 a, b;
  std::memcpy(&a, &v, sizeof(a));
  std::memcpy(&b, reinterpret_cast<const char*>(&v) + sizeof(a), sizeof(b));
  const v8 s8 = a + b;
  v4 c, e;
  std::memcpy(&c, &s8, sizeof(c));
  std::memcpy(&e, reinterpret_cast<const char*>(&s8) + sizeof(c), sizeof(e));
  const v4 s4 = c + e;
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// out[r*C + c] = dot(x[r], cent[c]) for R vectors and C consecutive centroid rows of length d.
// Every (r, c) pair is computed by the same sequence of operations, whatever R, C and the slot,
// so identical centroids give bit-identical scores (ties then resolve to the lower index).
template <int R, int C>
VB_INLINE void dot_block(const float* const* x, const float* cent, int64_t d, float* out) {
  v16 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = v16{};
  int64_t k = 0;
  for (; k + 16 <= d; k += 16) {
    v16 xv[R];
    for (int r = 0; r < R; ++r) std::memcpy(&xv[r], x[r] + k, sizeof(v16));
    for (int c = 0; c < C; ++c) {
      v16 cv;
      std::memcpy(&cv, cent + c * d + k, sizeof(v16));
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

template <int R>
VB_INLINE void dot_children(const float* const* x, const float* cent, int branching, int64_t d,
                            float* dots /* [R, branching] */) {
  float block[R * kChildren];
  for (int c0 = 0; c0 < branching; c0 += kChildren) {
    const int cn = std::min(kChildren, branching - c0);
    const float* cb = cent + c0 * d;
    switch (cn) {
      case 6: dot_block<R, 6>(x, cb, d, block); break;
      case 5: dot_block<R, 5>(x, cb, d, block); break;
      case 4: dot_block<R, 4>(x, cb, d, block); break;
      case 3: dot_block<R, 3>(x, cb, d, block); break;
      case 2: dot_block<R, 2>(x, cb, d, block); break;
      default: dot_block<R, 1>(x, cb, d, block); break;
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < cn; ++c) dots[r * branching + c0 + c] = block[r * cn + c];
  }
}

// Scores of one tile: `rows` vectors x[0..rows) against the `branching` children starting at `cent`;
// best[r] = index of the child with the smallest ||c||^2 - 2 x.c (strict <: ties keep the lower index).
VB_INLINE void best_children(const float* const* x, int rows, const float* cent, const float* norms,
                             int branching, int64_t d, float* dots, int* best) {
  switch (rows) {
    case 4: dot_children<4>(x, cent, branching, d, dots); break;
    case 3: dot_children<3>(x, cent, branching, d, dots); break;
    case 2: dot_children<2>(x, cent, branching, d, dots); break;
    default: dot_children<1>(x, cent, branching, d, dots); break;
  }
  for (int r = 0; r < rows; ++r) {
    int arg = 0;
    float best_score = norms[0] - 2.0f * dots[r * branching];
    for (int c = 1; c < branching; ++c) {
      const float score = norms[c] - 2.0f * dots[r * branching + c];
      if (score < best_score) best_score = score, arg = c;
    }
    best[r] = arg;
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

  int64_t node(int64_t i, int level) const { return level < 0 ? 0 : path[i * levels + level]; }
};

// Descends the vectors ids[0..count) through levels [first, last). The block is small enough to
// stay in cache across those levels, so each vector is read from memory once per stage. At every
// level the block is grouped by parent node (a stable sort of a few hundred keys) and each group
// is cut into tiles of kRows vectors that share their parent's children.
VB_CLONES void descend_block(const Descent& t, const int64_t* ids, int64_t count, int first, int last,
                             std::vector<std::pair<int64_t, int64_t>>& keys, std::vector<float>& dots) {
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
      best_children(x, rows, level_cent + parent * B * t.d, level_norms + parent * B, B, t.d, dots.data(), best);
      for (int r = 0; r < rows; ++r) t.path[keys[begin + r].second * t.levels + level] = parent * B + best[r];
      begin += rows;
    }
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
  const Descent tree{x, d, ldx, centroids, centroid_norms, level_offset.data(), levels, branching, path};

  // A stage is as many levels as a block can descend while its last level still gives each node
  // about kRowsPerNode vectors (mostly full tiles): 2 levels for 12 children and D=1024 (128-vector
  // blocks), so the feature matrix is read twice for 4 levels instead of once per level.
  // (At most 1024 vectors, so small D still gives enough blocks to balance the threads.)
  const int64_t block_rows = std::clamp<int64_t>(kBlockBytes / (d * int64_t(sizeof(float))), kRows * kRowsPerNode, 1024);
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
      std::vector<float> dots(kRows * branching);
#pragma omp for schedule(dynamic, 1)
      for (int64_t b = 0; b < blocks; ++b)
        descend_block(tree, order.data() + items[b], items[b + 1] - items[b], first, last, keys, dots);
    }
  }
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

const char* hkmeans_cpu_isa() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(VIDEOBERT_NO_CLONES)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2+FMA)";
  return "x86-64 baseline";
#else
  return "generic (compiler flags)";
#endif
}

}  // namespace videobert
