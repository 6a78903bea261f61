// CUDA kernel for hierarchical k-means assignment (see hkmeans.h for the tree layout).
//
// One warp per vector: the lanes split the feature dimension, keep partial dot products for four
// children at a time in registers, and reduce them with butterfly shuffles (every lane ends with
// the same sum, so every lane takes the same argmin). Features may be float32, float16 or bfloat16;
// centroids are float32 and accumulation is float32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "hkmeans_cuda.h"

namespace videobert {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kChildrenPerPass = 4;

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__global__ void hkmeans_assign_kernel(const T* __restrict__ x, int64_t n, int64_t d, int64_t ldx,
                                      const float* __restrict__ centroids,
                                      const float* __restrict__ norms, int levels, int branching,
                                      int64_t* __restrict__ path) {
  const int lane = threadIdx.x % 32;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= n) return;  // whole warps exit together
  const T* xr = x + row * ldx;
  int64_t parent = 0, level_offset = 0, level_size = branching;
  for (int level = 0; level < levels; ++level) {
    const int64_t first_child = level_offset + parent * branching;
    float best_score = INFINITY;
    int best = 0;
    for (int c0 = 0; c0 < branching; c0 += kChildrenPerPass) {
      float acc[kChildrenPerPass] = {0.f, 0.f, 0.f, 0.f};
      const int cn = min(kChildrenPerPass, branching - c0);
      for (int64_t k = lane; k < d; k += 32) {
        const float xv = to_float(xr[k]);
#pragma unroll
        for (int c = 0; c < kChildrenPerPass; ++c)
          if (c < cn) acc[c] = fmaf(xv, centroids[(first_child + c0 + c) * d + k], acc[c]);
      }
#pragma unroll
      for (int c = 0; c < kChildrenPerPass; ++c) {
        if (c >= cn) break;
        const float score = norms[first_child + c0 + c] - 2.0f * warp_sum(acc[c]);
        if (score < best_score) best_score = score, best = c0 + c;  // ties keep the lower index
      }
    }
    parent = parent * branching + best;
    if (lane == 0) path[row * levels + level] = parent;
    level_offset += level_size;
    level_size *= branching;
  }
}

template <typename T>
void launch(const void* x, int64_t n, int64_t d, int64_t ldx, const float* centroids,
            const float* norms, int levels, int branching, int64_t* path, cudaStream_t stream) {
  const int64_t blocks = (n + kWarpsPerBlock - 1) / kWarpsPerBlock;
  hkmeans_assign_kernel<T><<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0, stream>>>(
      static_cast<const T*>(x), n, d, ldx, centroids, norms, levels, branching, path);
}

}  // namespace

void hkmeans_assign_cuda(const void* x, int dtype, int64_t n, int64_t d, int64_t ldx,
                         const float* centroids, const float* centroid_norms, int levels,
                         int branching, int64_t* path, void* stream) {
  if (n <= 0 || levels <= 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case kFloat32: launch<float>(x, n, d, ldx, centroids, centroid_norms, levels, branching, path, s); break;
    case kFloat16: launch<__half>(x, n, d, ldx, centroids, centroid_norms, levels, branching, path, s); break;
    case kBFloat16: launch<__nv_bfloat16>(x, n, d, ldx, centroids, centroid_norms, levels, branching, path, s); break;
    default: throw std::invalid_argument("hkmeans_assign_cuda: unknown dtype code " + std::to_string(dtype));
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("hkmeans_assign_cuda: launch failed: ") + cudaGetErrorString(err));
}

}  // namespace videobert
