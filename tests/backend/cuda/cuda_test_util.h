// Helpers of the CUDA tests: skipping without a device, random inputs, relative errors.
#pragma once

#include "backend/cuda/cuda_engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

// The CUDA tests run wherever a device is present; elsewhere (CI, CPU-only builds) they skip.
#define EP_REQUIRE_CUDA_DEVICE()                                                        \
  do {                                                                                  \
    std::string why_;                                                                   \
    if (!ep::cuda::device_available(&why_)) GTEST_SKIP() << "no CUDA device: " << why_; \
  } while (0)

namespace ep::test {

// ||a - b|| / ||b||; NaN anywhere in `a` (an unwritten, poisoned element) makes it NaN.
inline double rel_l2(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

inline std::vector<float> random_floats(size_t n, std::mt19937_64& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace ep::test
