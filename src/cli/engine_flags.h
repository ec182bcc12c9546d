// The serving engine's command-line options, the same on `edgeprompt cloud` and `edgeprompt edge`:
// --max-seqs, --max-batched-tokens, --kv-block, the KV pool's size, --precision and (cloud)
// --cache-mode.
#pragma once

#include "runtime/serving_engine.h"

#include <CLI/CLI.hpp>

#include <string>

namespace ep::cli {

struct EngineFlags {
  EngineOptions options;
  std::string cache_mode;  // empty: the service's default
  // The commands compute in the fast precision unless asked (the library's default stays exact,
  // which the batch-invariance and split == monolithic tests rely on).
  std::string precision = "fast";
};

// `pool_flag` names the KV pool's size option (the edge's --kv-cache-bytes is its cloud-prompt
// cache); `with_cache_mode` adds --cache-mode.
void add_engine_flags(CLI::App* app, EngineFlags& flags, const std::string& pool_flag,
                      bool with_cache_mode);
// The options, with --cache-mode and --precision parsed; throws ep::Error for an unknown mode.
EngineOptions engine_options(const EngineFlags& flags);

}  // namespace ep::cli
