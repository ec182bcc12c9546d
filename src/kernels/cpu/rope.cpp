#include "kernels/cpu/rope.h"

#include <cmath>

namespace ep::kernels {

std::vector<double> rope_inv_freq(int64_t head_dim, double base,
                                  const std::vector<float>& freq_factors, double linear_factor) {
  std::vector<double> inv(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    double f = std::pow(base, -2.0 * double(i) / double(head_dim)) / linear_factor;
    if (!freq_factors.empty()) f /= double(freq_factors[size_t(i)]);
    inv[size_t(i)] = f;
  }
  return inv;
}

void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int64_t* positions,
          const std::vector<double>& inv_freq, RotaryPairs pairs) {
  const int64_t half = head_dim / 2;
  std::vector<float> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(positions[t]) * inv_freq[size_t(i)];
      cos_t[size_t(i)] = float(std::cos(angle));
      sin_t[size_t(i)] = float(std::sin(angle));
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        // The two elements rotated together by angle i.
        const int64_t a = pairs == RotaryPairs::Halves ? i : 2 * i;
        const int64_t b = pairs == RotaryPairs::Halves ? i + half : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * cos_t[size_t(i)] - x1 * sin_t[size_t(i)];
        v[b] = x0 * sin_t[size_t(i)] + x1 * cos_t[size_t(i)];
      }
    }
  }
}

}  // namespace ep::kernels
