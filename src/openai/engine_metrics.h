// The serving engine's metrics, the same names on the cloud and on an edge:
// edgeprompt_requests_running, _waiting, edgeprompt_kv_blocks_used, _total,
// edgeprompt_prefix_cache_hit_tokens_total, edgeprompt_preemptions_total,
// edgeprompt_engine_steps_total, edgeprompt_batch_tokens_total.
#pragma once

#include "http/metrics.h"
#include "runtime/serving_engine.h"

namespace ep {

// `registry` must have the prefix "edgeprompt_"; the engine must outlive it.
void register_engine_metrics(http::MetricsRegistry& registry, const ServingEngine& engine);

}  // namespace ep
