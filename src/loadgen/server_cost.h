// What a run cost the servers, from their /metrics before and after it (EdgePrompt's names;
// other servers simply lack them): per completed request, the cloud's prefill seconds of cloud
// prompts (GPU-seconds with --device cuda), the tokens its engine computed, the KV bytes it
// streamed to edges, and the KV bytes the edges received and their cache hits.
#pragma once

#include "loadgen/prometheus.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace ep::loadgen {

struct ServerCost {
  std::optional<Metrics> cloud;    // the cloud's delta over the run, if it was scraped
  std::optional<Metrics> targets;  // the sum of the deltas of the servers the requests went to
};

// {"cloud_prefill_seconds_per_request", "cloud_tokens_computed_per_request",
//  "cloud_kv_bytes_per_request", "edge_kv_bytes_received_per_request", "edge_kv_cache_hits",
//  "edge_kv_cache_misses", "cloud_metrics_delta", "target_metrics_delta"}: each only where its
// metric was exposed.
nlohmann::ordered_json server_cost_json(const ServerCost& cost, size_t completed);

// Lines for the text summary (empty when nothing was measured).
std::string server_cost_text(const ServerCost& cost, size_t completed);

}  // namespace ep::loadgen
