#include "kernels/cpu/elementwise.h"

#include <cmath>

namespace ep::kernels {

void rmsnorm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps) {
  for (int64_t r = 0; r < n_rows; ++r, x += n, y += n) {
    double sum_sq = 0.0;  // double: the mean of squares over thousands of elements
    for (int64_t i = 0; i < n; ++i) sum_sq += double(x[i]) * double(x[i]);
    const float inv = float(1.0 / std::sqrt(sum_sq / double(n) + double(eps)));
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * weight[i];
  }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace ep::kernels
