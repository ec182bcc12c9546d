// Row-wise normalisation and element-wise activations.
#pragma once

#include <cstdint>

namespace ep::kernels {

// y = x / sqrt(mean(x²) + eps) * weight, for n_rows rows of n elements (y may alias x).
void rmsnorm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps);

// out = silu(gate) * up (out may alias gate).
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// y += x
void add_inplace(float* y, const float* x, int64_t n);

}  // namespace ep::kernels
