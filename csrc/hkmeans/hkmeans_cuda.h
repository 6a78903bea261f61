// CUDA entry point for hierarchical k-means assignment; same contract as hkmeans_assign_cpu
// (hkmeans.h), with features in float32, float16 or bfloat16 and a CUDA stream to launch on.
#pragma once
#include <cstdint>

namespace videobert {

enum FeatureDtype : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// All pointers are device pointers; `stream` is a cudaStream_t (0 for the default stream).
void hkmeans_assign_cuda(const void* x, int dtype, int64_t n, int64_t d, int64_t ldx,
                         const float* centroids, const float* centroid_norms, int levels,
                         int branching, int64_t* path, void* stream);

}  // namespace videobert
