// y = x · Wᵀ for a batch of activation rows against a weight matrix in any storage type.
#pragma once

#include "core/matrix_view.h"
#include "core/thread_pool.h"

#include <cstdint>

namespace ep::kernels {

// x: [n_rows, w.cols] f32, y: [n_rows, w.rows] f32. Accumulates in f32; quantised weights are
// expanded to f32 block by block, never all at once.
void matmul(const MatrixView& w, const float* x, int64_t n_rows, float* y, ThreadPool& pool);

// Dot product of two f32 vectors with several independent partial sums (vectorisable).
float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace ep::kernels
