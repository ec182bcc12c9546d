// How a cloud prompt's KV that the edge does not hold reaches it: streamed from the cloud in
// f16, int8 or int4, or recomputed here from its tokens. The choice minimises the time to first
// token the paper's eq. 7 predicts,
//   T = (t_cc^1 + t_ct^1) + max(sum_{l=2..L} (t_cc^l + t_ct^l), sum_{l=1..L-1} t_ec^l) + t_ec^L,
// from measured inputs: the link's bandwidth and round trip (an EWMA of the last streams, a
// cold default before the first), the edge's compute per token and layer (a calibration at
// start-up), and the cloud's time to its first layer. Recomputing costs the edge all L layers
// over the cloud prompt's tokens and its own, with no transfer but the round trips.
#pragma once

#include "core/thread_pool.h"
#include "model/model.h"
#include "protocol/kv_codec.h"
#include "runtime/transformer.h"  // kernels::Precision, the calibration's pass

#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

namespace ep {

enum class KvPlan { F16, Int8, Int4, Local };
inline constexpr KvPlan kKvPlans[] = {KvPlan::F16, KvPlan::Int8, KvPlan::Int4, KvPlan::Local};

std::string_view kv_plan_name(KvPlan p);
std::optional<KvPlan> kv_plan_from_name(std::string_view name);  // f16, int8, int4, local
KvCodec kv_plan_codec(KvPlan p);                                 // a stream plan's codec

// What one request needs from the cloud prompt.
struct KvPlanInputs {
  uint64_t n_cloud = 0, n_edge = 0;  // tokens of the cloud prompt, of the private part
  uint64_t n_layers = 0, n_kv_heads = 0, head_dim = 0;
};

struct KvPlanOptions {
  std::optional<KvPlan> forced;    // --kv-plan f16|int8|int4|local; none: auto
  double cold_bits_per_s = 100e6;  // the link before any stream was measured
  double cold_rtt_s = 0.02;
  double alpha = 0.3;  // weight of the newest measurement in the EWMAs
};

struct KvPlanChoice {
  KvPlan plan = KvPlan::F16;
  double predicted_s = 0;  // the chosen plan's eq. 7 time to first token
};

class KvPlanner {
 public:
  // `edge_token_layer_s`: seconds the edge takes per token per layer (calibrate_edge_speed).
  KvPlanner(KvPlanOptions options, double edge_token_layer_s);

  // Eq. 7 for one plan, with the current estimates.
  double predict(KvPlan plan, const KvPlanInputs& in) const;
  // The forced plan, or the one predicted fastest.
  KvPlanChoice choose(const KvPlanInputs& in) const;

  // A stream measured: `bytes` arrived between `first_s` and `last_s` after the request went
  // out (the header's arrival counts as the round trip plus the cloud's time to first layer).
  void observe_stream(uint64_t bytes, double first_s, double last_s);
  // The edge's own pass: `tokens` through `layers` in `seconds`.
  void observe_edge(uint64_t tokens, uint64_t layers, double seconds);

  double bits_per_s() const;
  double rtt_s() const;
  double edge_token_layer_s() const;

 private:
  KvPlanOptions opt_;
  mutable std::mutex mutex_;
  double bits_per_s_, rtt_s_, edge_token_layer_s_;
  bool measured_link_ = false;
};

// The edge's seconds per token per layer: a timed prefill of `n_tokens` (after one untimed, so
// that the weights are paged in), in the precision the edge serves with.
double calibrate_edge_token_layer_s(const Model& model, ThreadPool& pool,
                                    kernels::Precision precision, int64_t n_tokens = 64);

}  // namespace ep
