// Hierarchical k-means kernels: tree descent (assignment) and per-cluster sums (centroid update).
//
// The tree is stored level by level in one row-major float32 matrix `centroids`: level l holds
// branching^(l+1) rows starting at row sum_{j<l} branching^(j+1); the children of node n of level
// l-1 are rows n*branching ... n*branching+branching-1 of level l. These headers take raw pointers
// and sizes only (no torch), so the build needs no torch.
#pragma once
#include <cstdint>

namespace videobert {

// path[i*levels + l] = index within level l of the node vector i reaches at level l (the leaf id at
// l = levels-1). At each level the child with the smallest ||c||^2 - 2 x.c wins (ties: lower index).
// A row of x holding NaN or inf gets -1 at every level.
// x: [n, d] float32 with row stride ldx (elements); centroid_norms: ||c||^2 per centroid row.
void hkmeans_assign_cpu(const float* x, int64_t n, int64_t d, int64_t ldx, const float* centroids,
                        const float* centroid_norms, int levels, int branching, int64_t* path,
                        int num_threads);

// sums[k, d] (float64, overwritten) and counts[k] (overwritten) of the rows of x per label.
// Deterministic: each output element is accumulated in row order whatever the thread count.
// Throws std::out_of_range for a label outside [0, k).
void centroid_update_cpu(const float* x, int64_t n, int64_t d, int64_t ldx, const int64_t* labels,
                         int64_t k, double* sums, int64_t* counts, int num_threads);

}  // namespace videobert
