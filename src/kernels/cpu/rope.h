// Rotary position embedding applied in place to the heads of a batch of tokens.
#pragma once

#include "model/hparams.h"

#include <cstdint>
#include <vector>

namespace ep::kernels {

// Per-pair inverse frequencies θ_i = base^(-2i/d) / factor_i, i < d/2. `freq_factors` (empty or
// d/2 values) divides each frequency: llama3 scaling and GGUF rope_freqs.weight; linear scaling
// divides all by one factor.
std::vector<double> rope_inv_freq(int64_t head_dim, double base,
                                  const std::vector<float>& freq_factors, double linear_factor);

// x: [n_tokens, n_heads, head_dim]; token t is at position positions[t].
void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int64_t* positions,
          const std::vector<double>& inv_freq, RopeLayout layout);

}  // namespace ep::kernels
