// Hugging Face directory -> GGUF, in one of our weight types.
#pragma once

#include "core/dtype.h"

#include <cstdint>
#include <filesystem>
#include <functional>

namespace ep {

struct ConvertReport {
  int64_t n_tensors = 0;
  int64_t n_fallback_f16 = 0;  // quantised requested, but rows not a multiple of 32
  uint64_t bytes = 0;
};

// Writes `out` atomically. 2-D weights become `type` (rows whose length is not a multiple of the
// 32-element block fall back to f16; with q4_0 the embedding and output matrices are q8_0, as
// llama.cpp's quantiser keeps them finer); 1-D tensors (norms, biases) stay f32. For llama-arch
// models the q/k rows are permuted to the adjacent-pair rotary layout that llama-arch GGUF
// readers expect; llama3 rope scaling is stored as rope_freqs.weight.
ConvertReport convert_hf_to_gguf(const std::filesystem::path& hf_dir,
                                 const std::filesystem::path& out, DType type,
                                 const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace ep
