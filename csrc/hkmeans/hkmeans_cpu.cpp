// CPU kernels for hierarchical k-means (see hkmeans.h).
//
// Assignment works level by level over all vectors: the vectors are grouped by the node they
// reached (a counting sort), so each group against its node's `branching` children is a small GEMM
// whose centroids stay in cache while the group streams through. The micro-kernel computes the dot
// products of up to 4 vectors with up to 6 children at once in SIMD registers (GCC/Clang vector
// extensions, 16 floats wide). On x86-64 the hot function is compiled for several ISA levels
// (target_clones) and the loader picks the best one for the CPU at run time, so a wheel built on
// one machine runs on any x86-64 machine.
#include "hkmeans.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(VIDEOBERT_NO_CLONES)
#define VB_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VB_CLONES
#endif
#define VB_INLINE __attribute__((always_inline)) inline

namespace videobert {
namespace {

typedef float v16 __attribute__((vector_size(64)));
constexpr int kRows = 4;      // vectors per tile (all from the same node)
constexpr int kChildren = 6;  // children per micro-kernel pass

// Sum of the 16 lanes in one fixed order, so equal inputs always give equal sums.
VB_INLINE float lane_sum(const v16& v) {
  float t[16];
  std::memcpy(t, &v, sizeof(t));
  for (int w = 8; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
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

struct LevelJob {
  const float* x;
  int64_t d, ldx;
  const float* centroids;       // first row of this level
  const float* norms;           // first norm of this level
  int levels, level, branching;
  const int64_t* order;         // vector ids grouped by parent node
  const int64_t* tile_start;    // tile t covers order[tile_start[t] .. tile_start[t+1])
  int64_t* path;
};

VB_CLONES void run_tiles(const LevelJob& job, int64_t t0, int64_t t1) {
  const int B = job.branching;
  std::vector<float> dots(kRows * B);
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t begin = job.tile_start[t], rows = job.tile_start[t + 1] - begin;
    const float* x[kRows];
    for (int r = 0; r < rows; ++r) x[r] = job.x + job.order[begin + r] * job.ldx;
    const int64_t first = job.order[begin];
    const int64_t parent = job.level == 0 ? 0 : job.path[first * job.levels + job.level - 1];
    const float* cent = job.centroids + parent * B * job.d;
    switch (rows) {
      case 4: dot_children<4>(x, cent, B, job.d, dots.data()); break;
      case 3: dot_children<3>(x, cent, B, job.d, dots.data()); break;
      case 2: dot_children<2>(x, cent, B, job.d, dots.data()); break;
      default: dot_children<1>(x, cent, B, job.d, dots.data()); break;
    }
    const float* norms = job.norms + parent * B;
    for (int r = 0; r < rows; ++r) {
      int best = 0;
      float best_score = norms[0] - 2.0f * dots[r * B];
      for (int c = 1; c < B; ++c) {
        const float score = norms[c] - 2.0f * dots[r * B + c];
        if (score < best_score) best_score = score, best = c;  // strict: ties keep the lower index
      }
      job.path[job.order[begin + r] * job.levels + job.level] = parent * B + best;
    }
  }
}

}  // namespace

void hkmeans_assign_cpu(const float* x, int64_t n, int64_t d, int64_t ldx, const float* centroids,
                        const float* centroid_norms, int levels, int branching, int64_t* path,
                        int num_threads) {
  if (n <= 0 || levels <= 0) return;
  if (num_threads <= 0) num_threads = omp_get_max_threads();
  std::vector<int64_t> order(n), tile_start, count;
  int64_t level_offset = 0, parents = 1;
  for (int level = 0; level < levels; ++level) {
    // Group the vectors by the node they reached at the previous level (counting sort, stable).
    count.assign(parents + 1, 0);
    for (int64_t i = 0; i < n; ++i) ++count[(level == 0 ? 0 : path[i * levels + level - 1]) + 1];
    for (int64_t p = 0; p < parents; ++p) count[p + 1] += count[p];
    tile_start.clear();
    for (int64_t p = 0; p < parents; ++p)
      for (int64_t s = count[p]; s < count[p + 1]; s += kRows) tile_start.push_back(s);
    tile_start.push_back(n);
    for (int64_t i = 0; i < n; ++i) order[count[level == 0 ? 0 : path[i * levels + level - 1]]++] = i;

    const LevelJob job{x, d, ldx, centroids + level_offset * d, centroid_norms + level_offset,
                       levels, level, branching, order.data(), tile_start.data(), path};
    const int64_t tiles = static_cast<int64_t>(tile_start.size()) - 1;
    // Contiguous tile ranges per thread: neighbouring tiles share a node, so its centroids are
    // reused from cache.
#pragma omp parallel num_threads(num_threads)
    {
      const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
      run_tiles(job, tiles * id / nt, tiles * (id + 1) / nt);
    }
    parents *= branching;
    level_offset += parents;
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
