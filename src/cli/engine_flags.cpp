#include "cli/engine_flags.h"

#include "core/error.h"

namespace ep::cli {

void add_engine_flags(CLI::App* app, EngineFlags& flags, const std::string& pool_flag,
                      bool with_cache_mode) {
  EngineOptions& e = flags.options;
  app->add_option("--max-seqs", e.max_seqs,
                  "Requests computed at once (continuous batching; 1: one at a time)")
      ->check(CLI::Range(int64_t(1), int64_t(4096)))
      ->capture_default_str();
  app->add_option("--max-batched-tokens", e.max_batched_tokens,
                  "Tokens one engine step computes (decodes first, then prompt chunks)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20))
      ->capture_default_str();
  app->add_option("--kv-block", e.kv_block, "Tokens per KV block of the paged KV pool")
      ->check(CLI::Range(int64_t(1), int64_t(4096)))
      ->capture_default_str();
  app->add_option(pool_flag, e.kv_cache_bytes, "Bytes of the engine's paged KV pool")
      ->capture_default_str();
  app->add_option(
         "--precision", flags.precision,
         "Matrix arithmetic: fast (8-bit activations for q8_0/q4_0, bf16/f16 for f16/bf16; "
         "default) or exact (f32 activations, batch-invariant; docs/performance.md)")
      ->check(CLI::IsMember({"fast", "exact"}))
      ->capture_default_str();
  if (with_cache_mode) {
    app->add_option("--cache-mode", flags.cache_mode,
                    "none (every request prefills its whole prompt), prefix (automatic prefix "
                    "caching) or relay (a named cloud prompt's KV is held once and attended by "
                    "every request that names it; default)")
        ->check(CLI::IsMember({"none", "prefix", "relay"}));
  }
}

EngineOptions engine_options(const EngineFlags& flags) {
  EngineOptions e = flags.options;
  if (flags.cache_mode == "none") {
    e.cache_mode = CacheMode::None;
  } else if (flags.cache_mode == "prefix") {
    e.cache_mode = CacheMode::Prefix;
  } else if (flags.cache_mode == "relay") {
    e.cache_mode = CacheMode::Relay;
  } else if (!flags.cache_mode.empty()) {
    fail("--cache-mode: '{}' is not none, prefix or relay", flags.cache_mode);
  }
  if (flags.precision == "fast") {
    e.precision = kernels::Precision::Fast;
  } else if (flags.precision == "exact") {
    e.precision = kernels::Precision::Exact;
  } else {
    fail("--precision: '{}' is not fast or exact", flags.precision);
  }
  return e;
}

}  // namespace ep::cli
