#include "loadgen/server_cost.h"

#include <fmt/core.h>

namespace ep::loadgen {
namespace {

struct Derived {
  const char* key;
  const char* label;
  bool cloud;          // from the cloud's metrics, else the targets'
  const char* metric;  // Prometheus name
  bool per_request;
};

constexpr Derived kDerived[] = {
    {"cloud_prefill_seconds_per_request", "Cloud prompt prefill (s/req):", true,
     "edgeprompt_cloud_prefill_seconds_total", true},
    {"cloud_tokens_computed_per_request", "Cloud tokens computed (tok/req):", true,
     "edgeprompt_batch_tokens_total", true},
    {"cloud_kv_bytes_per_request", "Cloud KV bytes sent (B/req):", true,
     "edgeprompt_cloud_kv_bytes_served_total", true},
    {"edge_kv_bytes_received_per_request", "Edge KV bytes received (B/req):", false,
     "edgeprompt_edge_kv_bytes_received_total", true},
    {"edge_kv_cache_hits", "Edge KV cache hits:", false, "edgeprompt_edge_kv_cache_hits_total",
     false},
    {"edge_kv_cache_misses", "Edge KV cache misses:", false,
     "edgeprompt_edge_kv_cache_misses_total", false},
};

std::optional<double> value(const ServerCost& c, const Derived& d, size_t completed) {
  const std::optional<Metrics>& m = d.cloud ? c.cloud : c.targets;
  if (!m) return std::nullopt;
  const auto it = m->find(d.metric);
  if (it == m->end()) return std::nullopt;
  if (!d.per_request) return it->second;
  if (completed == 0) return std::nullopt;
  return it->second / double(completed);
}

}  // namespace

nlohmann::ordered_json server_cost_json(const ServerCost& cost, size_t completed) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const Derived& d : kDerived) {
    if (const auto v = value(cost, d, completed)) j[d.key] = *v;
  }
  if (cost.cloud) j["cloud_metrics_delta"] = *cost.cloud;
  if (cost.targets) j["target_metrics_delta"] = *cost.targets;
  return j;
}

std::string server_cost_text(const ServerCost& cost, size_t completed) {
  std::string out;
  for (const Derived& d : kDerived) {
    if (const auto v = value(cost, d, completed)) {
      out += fmt::format("{:<40}{:>10}\n", d.label,
                         d.per_request ? fmt::format("{:.4g}", *v) : fmt::format("{:.0f}", *v));
    }
  }
  return out;
}

}  // namespace ep::loadgen
