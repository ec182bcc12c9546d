#include "kernels/cpu/elementwise.h"

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/elementwise_kernels.h"

#include <algorithm>
#include <cmath>

namespace ep::kernels {

namespace {

// Σ x_i² in double (the mean of squares over thousands of elements), as 8 independent partial
// sums and a fixed tree: one chain of dependent adds would cost an add's latency per element.
double sum_of_squares(const float* x, int64_t n) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += double(x[i + j]) * double(x[i + j]);
  }
  for (int j = 0; i < n; ++i, ++j) acc[j] += double(x[i]) * double(x[i]);
  for (int w = kLanes / 2; w > 0; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return acc[0];
}

}  // namespace

void rmsnorm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps) {
  for (int64_t r = 0; r < n_rows; ++r, x += n, y += n) {
    const double sum_sq = sum_of_squares(x, n);
    const float inv = float(1.0 / std::sqrt(sum_sq / double(n) + double(eps)));
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * weight[i];
  }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  if (active_isa() == Isa::Avx512) return detail::swiglu_avx512()(gate, up, out, n);
  if (active_isa() == Isa::Avx2) return detail::swiglu_avx2()(gate, up, out, n);
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void geglu_tanh(const float* gate, const float* up, float* out, int64_t n) {
  constexpr double kSqrt2OverPi = 0.7978845608028654;
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = float(0.5 * g * (1.0 + std::tanh(kSqrt2OverPi * (g + 0.044715 * g * g * g)))) * up[i];
  }
}

// Below this many elements a call stays on the calling thread (a team wake-up costs more).
constexpr int64_t kParallelElems = 1 << 16;

void rmsnorm(const float* x, const float* weight, float* y, int64_t n_rows, int64_t n, float eps,
             ThreadPool& pool) {
  if (n_rows * n < kParallelElems || n_rows < 2) return rmsnorm(x, weight, y, n_rows, n, eps);
  pool.parallel_for(n_rows, 8, [&](int64_t r0, int64_t r1) {
    rmsnorm(x + r0 * n, weight, y + r0 * n, r1 - r0, n, eps);
  });
}

void swiglu(const float* gate, const float* up, float* out, int64_t n, ThreadPool& pool) {
  if (n < kParallelElems) return swiglu(gate, up, out, n);
  constexpr int64_t kChunk = 4096;
  pool.parallel_for((n + kChunk - 1) / kChunk, 4, [&](int64_t c0, int64_t c1) {
    const int64_t i0 = c0 * kChunk, i1 = std::min(n, c1 * kChunk);
    swiglu(gate + i0, up + i0, out + i0, i1 - i0);
  });
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace ep::kernels
