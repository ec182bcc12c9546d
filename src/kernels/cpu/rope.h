// Rotary position embedding applied in place to the heads of a batch of tokens.
#pragma once

#include <cstdint>
#include <vector>

namespace ep::kernels {

// Which two elements of a head are rotated together by the i-th angle: (i, i + d/2) as Hugging
// Face's rotate_half lays them out, or (2i, 2i + 1) as the original Llama and GGUF files do.
enum class RotaryPairs { Halves, Adjacent };

// Per-pair inverse frequencies θ_i = base^(-2i/d) / factor_i, i < d/2. `freq_factors` (empty or
// d/2 values) divides each frequency: llama3 scaling and GGUF rope_freqs.weight; linear scaling
// divides all by one factor.
std::vector<double> rope_inv_freq(int64_t head_dim, double base,
                                  const std::vector<float>& freq_factors, double linear_factor);

// x: [n_tokens, n_heads, head_dim]; token t is at position positions[t].
void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, const int64_t* positions,
          const std::vector<double>& inv_freq, RotaryPairs pairs);

}  // namespace ep::kernels
