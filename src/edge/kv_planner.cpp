#include "edge/kv_planner.h"

#include "core/error.h"
#include "runtime/transformer.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace ep {

std::string_view kv_plan_name(KvPlan p) {
  switch (p) {
    case KvPlan::F16:
      return "f16";
    case KvPlan::Int8:
      return "int8";
    case KvPlan::Int4:
      return "int4";
    case KvPlan::Local:
      return "local";
  }
  return "?";
}

std::optional<KvPlan> kv_plan_from_name(std::string_view name) {
  for (const KvPlan p : kKvPlans) {
    if (kv_plan_name(p) == name) return p;
  }
  return std::nullopt;
}

KvCodec kv_plan_codec(KvPlan p) {
  switch (p) {
    case KvPlan::Int8:
      return {KvDtype::F16, KvEncoding::Int8};
    case KvPlan::Int4:
      return {KvDtype::F16, KvEncoding::Int4};
    default:
      return {};
  }
}

KvPlanner::KvPlanner(KvPlanOptions options, double edge_token_layer_s)
    : opt_(options),
      bits_per_s_(options.cold_bits_per_s),
      rtt_s_(options.cold_rtt_s),
      edge_token_layer_s_(edge_token_layer_s) {
  if (!(bits_per_s_ > 0) || !(rtt_s_ >= 0) || !(edge_token_layer_s_ > 0)) {
    fail("KV planner: bandwidth and edge speed must be positive");
  }
}

double KvPlanner::predict(KvPlan plan, const KvPlanInputs& in) const {
  std::lock_guard lock(mutex_);
  const double layers = double(std::max<uint64_t>(1, in.n_layers));
  // One round trip for the prompt's metadata, whatever the plan.
  const double metadata = rtt_s_;
  if (plan == KvPlan::Local) {
    return metadata + layers * double(in.n_cloud + in.n_edge) * edge_token_layer_s_;
  }
  const KvLayerShape shape{in.n_cloud, in.n_kv_heads, in.head_dim};
  const double t_ct = double(kv_payload_bytes(shape, kv_plan_codec(plan))) * 8 / bits_per_s_;
  const double t_ec = double(in.n_edge) * edge_token_layer_s_;
  // The stream's request costs a round trip (t_cc^1: the cloud holds the prompt's KV); later
  // layers' cloud compute is already done, so only their transfer overlaps the edge's layers.
  const double first = rtt_s_ + t_ct;
  return metadata + first + std::max((layers - 1) * t_ct, (layers - 1) * t_ec) + t_ec;
}

KvPlanChoice KvPlanner::choose(const KvPlanInputs& in) const {
  if (opt_.forced) return {*opt_.forced, predict(*opt_.forced, in)};
  KvPlanChoice best{KvPlan::F16, predict(KvPlan::F16, in)};
  for (const KvPlan p : kKvPlans) {
    const double t = predict(p, in);
    if (t < best.predicted_s) best = {p, t};
  }
  return best;
}

void KvPlanner::observe_stream(uint64_t bytes, double first_s, double last_s) {
  if (!(first_s >= 0) || !(last_s >= first_s)) return;
  std::lock_guard lock(mutex_);
  const double a = measured_link_ ? opt_.alpha : 1.0;  // the first measurement replaces the guess
  // The header's arrival is a round trip (plus the cloud's time to its first layer).
  rtt_s_ = (1 - a) * rtt_s_ + a * first_s;
  // A stream that arrived in one piece says only that the link is at least that fast.
  const double span = std::max(last_s - first_s, 1e-4);
  bits_per_s_ = (1 - a) * bits_per_s_ + a * (double(bytes) * 8 / span);
  measured_link_ = true;
}

void KvPlanner::observe_edge(uint64_t tokens, uint64_t layers, double seconds) {
  if (tokens == 0 || layers == 0 || !(seconds > 0)) return;
  std::lock_guard lock(mutex_);
  edge_token_layer_s_ =
      (1 - opt_.alpha) * edge_token_layer_s_ + opt_.alpha * seconds / double(tokens * layers);
}

double KvPlanner::bits_per_s() const {
  std::lock_guard lock(mutex_);
  return bits_per_s_;
}

double KvPlanner::rtt_s() const {
  std::lock_guard lock(mutex_);
  return rtt_s_;
}

double KvPlanner::edge_token_layer_s() const {
  std::lock_guard lock(mutex_);
  return edge_token_layer_s_;
}

double calibrate_edge_token_layer_s(const Model& model, ThreadPool& pool,
                                    kernels::Precision precision, int64_t n_tokens) {
  n_tokens = std::clamp<int64_t>(n_tokens, 1, model.hp.n_ctx_train);
  std::vector<int32_t> ids(static_cast<size_t>(n_tokens));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7 + 1) % size_t(model.hp.n_vocab));
  Transformer tf(model, n_tokens, pool);
  tf.set_precision(precision);
  std::vector<float> logits;
  tf.forward(ids, logits, false);
  tf.reset();
  const auto t0 = std::chrono::steady_clock::now();
  tf.forward(ids, logits, false);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::max(s, 1e-9) / double(n_tokens * model.hp.n_layer);
}

}  // namespace ep
