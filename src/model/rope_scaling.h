// Rotary-embedding frequency scaling shared by the loader (HF configs) and the converter
// (which stores the result as the GGUF tensor rope_freqs.weight).
#pragma once

#include "model/hparams.h"

#include <vector>

namespace ep {

// Divisors of the head_dim/2 rotary frequencies for llama3 scaling (Llama 3.1+): long
// wavelengths are slowed by `factor`, short ones kept, the band between interpolated smoothly.
std::vector<float> llama3_freq_factors(const HParams& hp);

}  // namespace ep
