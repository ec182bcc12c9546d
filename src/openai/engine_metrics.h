// The serving engine's metrics, the same names on the cloud and on an edge:
// edgeprompt_requests_running, _waiting, edgeprompt_kv_blocks_used, _total,
// edgeprompt_prefix_cache_hit_tokens_total, edgeprompt_preemptions_total,
// edgeprompt_engine_steps_total, edgeprompt_batch_tokens_total, and the histograms
// edgeprompt_batch_size (sequences per step), edgeprompt_ttft_seconds (from arrival at the
// engine), edgeprompt_tpot_seconds (per output token after the first).
#pragma once

#include "http/metrics.h"
#include "runtime/serving_engine.h"

namespace ep {

// `registry` must have the prefix "edgeprompt_". The histograms: `options` with hooks that
// observe into them (before the engine is made); the gauges read `engine`, which must outlive
// the registry's use.
EngineOptions with_engine_histograms(http::MetricsRegistry& registry, EngineOptions options);
void register_engine_metrics(http::MetricsRegistry& registry, const ServingEngine& engine);

}  // namespace ep
