// Random-weight GGUF files with the shapes of real models, for benchmarks without downloads.
#pragma once

#include "core/dtype.h"
#include "model/hparams.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ep {

std::vector<std::string> synth_shape_names();  // tinyllama-1.1b, llama2-7b, llama3-8b, qwen2.5-0.5b
std::optional<HParams> synth_shape(const std::string& name);

// Writes a complete GGUF (hyper-parameters, a placeholder SentencePiece-style vocabulary so other
// GGUF readers accept it, and weights drawn from N(0, 0.02²)-like noise, quantised to `type`).
// Deterministic for a given seed.
void write_synthetic_model(const HParams& hp, DType type, const std::string& name,
                           const std::filesystem::path& out, uint64_t seed, int n_threads,
                           const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace ep
