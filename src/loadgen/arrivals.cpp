#include "loadgen/arrivals.h"

#include "core/error.h"

#include <cmath>
#include <random>

namespace ep::loadgen {

std::vector<double> arrival_times(size_t n, double rate, double burstiness, uint64_t seed) {
  if (!(rate > 0)) fail("--request-rate must be positive (or inf)");
  if (!(burstiness > 0) || std::isinf(burstiness)) fail("--burstiness must be positive");
  std::vector<double> times(n, 0.0);
  if (std::isinf(rate)) return times;
  // Shape k and scale 1/(rate k): the mean gap is 1/rate whatever the shape.
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> gap(burstiness, 1.0 / (rate * burstiness));
  double t = 0;
  for (size_t i = 0; i < n; ++i) {
    t += gap(rng);
    times[i] = t;
  }
  return times;
}

}  // namespace ep::loadgen
