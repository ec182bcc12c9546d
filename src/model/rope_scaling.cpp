#include "model/rope_scaling.h"

#include <cmath>
#include <numbers>

namespace ep {

std::vector<float> llama3_freq_factors(const HParams& hp) {
  const RopeScaling& s = hp.rope_scaling;
  const double low_wavelen = double(s.original_max_position) / s.low_freq_factor;
  const double high_wavelen = double(s.original_max_position) / s.high_freq_factor;
  std::vector<float> factors(static_cast<size_t>(hp.head_dim / 2));
  for (int64_t i = 0; i < hp.head_dim / 2; ++i) {
    const double freq = std::pow(double(hp.rope_theta), -2.0 * double(i) / double(hp.head_dim));
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double scaled;
    if (wavelen < high_wavelen) {
      scaled = freq;
    } else if (wavelen > low_wavelen) {
      scaled = freq / s.factor;
    } else {
      const double smooth = (double(s.original_max_position) / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      scaled = (1.0 - smooth) * freq / s.factor + smooth * freq;
    }
    factors[size_t(i)] = float(freq / scaled);
  }
  return factors;
}

}  // namespace ep
