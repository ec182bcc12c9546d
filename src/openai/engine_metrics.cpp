#include "openai/engine_metrics.h"

namespace ep {

void register_engine_metrics(http::MetricsRegistry& registry, const ServingEngine& engine) {
  const auto stat = [&engine](auto field) {
    return [&engine, field] { return double(engine.stats().*field); };
  };
  registry.gauge("requests_running", "Requests the engine is computing.",
                 stat(&EngineStats::running));
  registry.gauge("requests_waiting", "Requests queued for the engine.",
                 stat(&EngineStats::waiting));
  registry.gauge("kv_blocks_used", "KV blocks held by requests.",
                 stat(&EngineStats::kv_blocks_used));
  registry.gauge("kv_blocks_total", "KV blocks in the pool.", stat(&EngineStats::kv_blocks_total));
  registry.gauge("prefix_cache_hit_tokens_total", "Prompt tokens found in the prefix cache.",
                 stat(&EngineStats::prefix_hit_tokens));
  registry.gauge("preemptions_total", "Requests preempted (their KV recomputed later).",
                 stat(&EngineStats::preemptions));
  registry.gauge("engine_steps_total", "Batched steps the engine ran.", stat(&EngineStats::steps));
  registry.gauge("batch_tokens_total", "Tokens computed over all steps.",
                 stat(&EngineStats::batch_tokens));
}

}  // namespace ep
