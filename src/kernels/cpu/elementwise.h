// Row-wise normalisation and element-wise activations.
#pragma once

#include "core/thread_pool.h"

#include <cstdint>

namespace ep::kernels {

// y = x / sqrt(mean(x²) + eps) * weight, for n_rows rows of n elements (y may alias x).
void rmsnorm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps);

// out = silu(gate) * up (out may alias gate). Vectorised exp on AVX-512 CPUs.
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// out = gelu_tanh(gate) * up (out may alias gate): GELU with PyTorch's tanh approximation,
// 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))), as Gemma's feed-forward uses it.
void geglu_tanh(const float* gate, const float* up, float* out, int64_t n);

// The same split over pool's threads when the work is large enough to pay for it (prefill);
// results are identical to the calls above.
void rmsnorm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps,
             ThreadPool& pool);
void swiglu(const float* gate, const float* up, float* out, int64_t n, ThreadPool& pool);

// y += x
void add_inplace(float* y, const float* x, int64_t n);

}  // namespace ep::kernels
