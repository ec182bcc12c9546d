#include "openai/engine_metrics.h"

namespace ep {

EngineOptions with_engine_histograms(http::MetricsRegistry& registry, EngineOptions options) {
  http::Histogram& batch = registry.histogram("batch_size", "Sequences computed per engine step.",
                                              {1, 2, 4, 8, 16, 32, 64, 128, 256});
  const std::vector<double> latency = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  http::Histogram& ttft = registry.histogram(
      "ttft_seconds", "Time to first token, from arrival at the engine.", latency);
  http::Histogram& tpot =
      registry.histogram("tpot_seconds", "Time per output token after the first.", latency);
  options.on_step = [&batch](size_t seqs, int64_t) { batch.observe(double(seqs)); };
  options.on_finished = [&ttft, &tpot](const GenerationResult& r) {
    ttft.observe(r.ttft_s);
    if (r.ids.size() > 1) tpot.observe(r.generation_s / double(r.ids.size() - 1));
  };
  return options;
}

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
