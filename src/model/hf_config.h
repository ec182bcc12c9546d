// Hugging Face config.json (transformers) -> HParams, for the llama, mistral and qwen2 families.
// Both spellings of RoPE settings are read: transformers v4 ("rope_theta" and "rope_scaling" at the
// top level) and v5 ("rope_parameters").
#pragma once

#include "model/hparams.h"

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <string>

namespace ep {

// Throws ep::Error "<path_for_errors>: <problem>" for a missing or mistyped field, an unsupported
// architecture or RoPE type, or inconsistent sizes.
HParams parse_hf_config(const nlohmann::json& config, const std::string& path_for_errors);

// Reads dir/config.json.
HParams load_hf_config(const std::filesystem::path& dir);

}  // namespace ep
