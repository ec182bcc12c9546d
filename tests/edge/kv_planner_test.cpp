// The KV planner: eq. 7 by hand for each plan, the choice it implies, a forced plan, the EWMA of
// measured streams; and, over real sockets through the relay's emulated link, the streams it
// measures make it recompute locally on a 1 Mbit/s link and stream on a fast one.
#include "edge/kv_planner.h"
#include "core/thread_pool.h"
#include "model/fingerprint.h"
#include "model/model.h"
#include "protocol/kv_fetch.h"
#include "relay/tcp_relay.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace ep {
namespace {

// TinyLlama's KV shape, a 1024-token cloud prompt and 512 private tokens.
const KvPlanInputs kTiny{1024, 512, 22, 4, 64};

TEST(KvPlanner, PredictsEquationSevenForEachPlan) {
  KvPlanOptions o;
  o.cold_bits_per_s = 1e9;
  o.cold_rtt_s = 0.01;
  const double e = 1e-4;  // seconds per token per layer
  const KvPlanner p(o, e);
  const double L = 22, t_ec = 512 * e;
  for (const KvPlan plan : {KvPlan::F16, KvPlan::Int8, KvPlan::Int4}) {
    const double bytes = double(kv_payload_bytes({1024, 4, 64}, kv_plan_codec(plan)));
    const double t_ct = bytes * 8 / 1e9;
    EXPECT_NEAR(p.predict(plan, kTiny),
                0.01 + (0.01 + t_ct) + std::max((L - 1) * t_ct, (L - 1) * t_ec) + t_ec, 1e-12);
  }
  EXPECT_NEAR(p.predict(KvPlan::Local, kTiny), 0.01 + L * 1536 * e, 1e-12);
  // At 1 Gbit/s the edge's compute hides every codec's transfer: f16 costs least besides int8/4
  // only by the first layer; local recomputes three times the tokens.
  EXPECT_NE(p.choose(kTiny).plan, KvPlan::Local);
}

TEST(KvPlanner, ChoosesByTheLinkAndHonoursAForcedPlan) {
  KvPlanOptions slow;
  slow.cold_bits_per_s = 1e6;
  EXPECT_EQ(KvPlanner(slow, 1e-4).choose(kTiny).plan, KvPlan::Local);
  KvPlanOptions mid;
  mid.cold_bits_per_s = 100e6;  // 100 Mbit/s: f16 takes 1.8 s, int4 about 0.5 s
  const auto c = KvPlanner(mid, 1e-4).choose(kTiny);
  EXPECT_EQ(c.plan, KvPlan::Int4);
  EXPECT_GT(c.predicted_s, 0);
  mid.forced = KvPlan::F16;
  const KvPlanner forced(mid, 1e-4);
  EXPECT_EQ(forced.choose(kTiny).plan, KvPlan::F16);
  EXPECT_DOUBLE_EQ(forced.choose(kTiny).predicted_s, forced.predict(KvPlan::F16, kTiny));
  EXPECT_EQ(kv_plan_from_name("int4"), KvPlan::Int4);
  EXPECT_FALSE(kv_plan_from_name("auto"));
  EXPECT_THROW(KvPlanner(mid, 0), Error);
}

TEST(KvPlanner, MeasuredStreamsReplaceTheColdGuessThenAverage) {
  KvPlanOptions o;
  o.alpha = 0.5;
  KvPlanner p(o, 1e-4);
  EXPECT_DOUBLE_EQ(p.bits_per_s(), 100e6);
  p.observe_stream(1'000'000, 0.05, 1.05);  // 8 Mbit/s, 50 ms to the header
  EXPECT_DOUBLE_EQ(p.bits_per_s(), 8e6);
  EXPECT_DOUBLE_EQ(p.rtt_s(), 0.05);
  p.observe_stream(1'000'000, 0.01, 0.51);  // 16 Mbit/s
  EXPECT_DOUBLE_EQ(p.bits_per_s(), 12e6);
  EXPECT_DOUBLE_EQ(p.rtt_s(), 0.03);
  p.observe_stream(10, -1, 0);  // nonsense is ignored
  EXPECT_DOUBLE_EQ(p.bits_per_s(), 12e6);
  p.observe_edge(100, 10, 0.5);  // 5e-4 s per token-layer
  EXPECT_DOUBLE_EQ(p.edge_token_layer_s(), 0.5 * 1e-4 + 0.5 * 5e-4);
}

TEST(KvPlanner, CalibrationMeasuresTheEdge) {
  const auto model = load_model(test::default_model());
  ThreadPool pool(2);
  const double s = calibrate_edge_token_layer_s(*model, pool, kernels::Precision::Fast, 32);
  EXPECT_GT(s, 1e-8);
  EXPECT_LT(s, 0.1);
}

// The cloud prompt streamed through the relay's emulated link; the planner fed what the fetch
// measured (the header's arrival, the last layer's, the bytes).
KvPlan plan_after_stream(const std::string& cloud_url, LinkShape link, const Model& model,
                         const std::string& fingerprint, double edge_s) {
  const int port = std::stoi(cloud_url.substr(cloud_url.rfind(':') + 1));
  TcpRelay relay(port, {}, "127.0.0.1", "127.0.0.1", 0, link);
  CloudKvFetch fetch(relay.url(), "long", model, fingerprint);
  fetch.wait_complete();
  const auto arrival = fetch.layer_arrival_s();
  KvPlanner planner({}, edge_s);
  planner.observe_stream(fetch.bytes_received(), arrival.front() - 1e-3,
                         *std::max_element(arrival.begin(), arrival.end()));
  const auto& h = fetch.header();
  return planner.choose({h.tokens.size(), 64, h.n_layers, h.n_kv_heads, h.head_dim}).plan;
}

TEST(KvPlanner, RecomputesOnASlowLinkAndStreamsOnAFastOne) {
  const auto model_path = test::default_model();
  test::Process cloud(
      {"cloud", "--insecure-http", "--model", model_path.string(), "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 400; ++i) tokens.push_back(5 + (i * 13) % 3000);
  httplib::Client c(cloud_url);
  auto put = c.Put("/v1/cloud-prompts/long", nlohmann::json{{"tokens", tokens}}.dump(),
                   "application/json");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 201) << put->body;
  const auto model = load_model(model_path);
  const std::string fp = model_fingerprint(*model->source);
  ThreadPool pool(2);
  const double edge_s = calibrate_edge_token_layer_s(*model, pool, kernels::Precision::Fast);
  // 1 Mbit/s: the 1.2 MB of f16 KV take about 10 s, int4 3 s; the edge recomputes 464 tokens
  // through 6 layers in well under a second.
  LinkShape slow;
  slow.bytes_per_second = 1e6 / 8;
  EXPECT_EQ(plan_after_stream(cloud_url, slow, *model, fp, edge_s), KvPlan::Local);
  // Loopback without shaping: streaming wins.
  EXPECT_NE(plan_after_stream(cloud_url, LinkShape{}, *model, fp, edge_s), KvPlan::Local);
}

}  // namespace
}  // namespace ep
