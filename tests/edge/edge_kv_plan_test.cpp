// The planner in the edge's request path, between real processes: --kv-plan local recomputes the
// cloud prompt from its tokens (the same answer as a monolithic run, nothing private on the
// wire), and --kv-plan auto over an emulated 1 Mbit/s link recomputes rather than streams;
// the plan and its prediction are in usage.timings and /metrics.
#include "relay/tcp_relay.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace ep {
namespace {

using json = nlohmann::json;

const std::string kSystem = "You are the assistant of a small bank. Answer briefly and politely.";

int port_of(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

json chat(const std::string& edge, const std::string& user) {
  httplib::Client c(edge);
  c.set_read_timeout(120, 0);
  const json body = {{"cloud_prompt", "bank"},
                     {"messages", {{{"role", "user"}, {"content", user}}}},
                     {"temperature", 0},
                     {"max_tokens", 12}};
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return {};
  EXPECT_EQ(r->status, 200) << r->body;
  return json::parse(r->body);
}

TEST(EdgeKvPlan, LocalRecomputesAndAutoAvoidsASlowLink) {
  const std::string model = test::default_model().string();
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  httplib::Client c(cloud_url);
  auto put = c.Put("/v1/cloud-prompts/bank",
                   json{{"text", kSystem}, {"chat_template", "chatml"}}.dump(), "application/json");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 201) << put->body;
  const std::string user = "Can I open an account online? My number is 4417-zq7.";

  {
    TcpRelay relay(port_of(cloud_url));
    test::Process edge({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                        "--cloud", relay.url(), "--listen", "127.0.0.1:0", "--kv-plan", "local"});
    const std::string edge_url = test::listen_url(edge);
    const json a = chat(edge_url, user);
    const json& t = a["usage"]["timings"];
    EXPECT_EQ(t["kv_plan"], "local");
    EXPECT_EQ(t["kv_source"], "local");
    EXPECT_GT(t["ttft_predicted_ms"].get<double>(), 0);
    const auto local =
        test::run_cli({"run", "--precision", "exact", "--model", model, "--system", kSystem,
                       "--prompt", user, "--chat-template", "chatml", "--temp", "0", "-n", "12"});
    ASSERT_EQ(local.exit_code, 0) << local.err;
    std::string want = local.out;
    if (!want.empty() && want.back() == '\n') want.pop_back();
    EXPECT_EQ(a["choices"][0]["message"]["content"], want);
    const std::string up = relay.client_to_server(), down = relay.server_to_client();
    for (const std::string* capture : {&up, &down}) {
      EXPECT_EQ(capture->find("4417"), std::string::npos);
      EXPECT_EQ(capture->find("zq7"), std::string::npos);
    }
    auto m = httplib::Client(edge_url).Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find("edgeprompt_edge_kv_plan_local_total 1"), std::string::npos) << m->body;
    EXPECT_NE(m->body.find("edgeprompt_edge_ttft_predicted_seconds"), std::string::npos);
  }
  {
    LinkShape slow;
    slow.bytes_per_second = 1e6 / 8;  // 1 Mbit/s
    slow.latency = std::chrono::milliseconds(5);
    TcpRelay relay(port_of(cloud_url), {}, "127.0.0.1", "127.0.0.1", 0, slow);
    test::Process edge({"edge", "--insecure-http", "--model", model, "--cloud", relay.url(),
                        "--listen", "127.0.0.1:0", "--kv-plan", "auto"});
    const std::string edge_url = test::listen_url(edge);
    const json a = chat(edge_url, user);
    EXPECT_EQ(a["usage"]["timings"]["kv_plan"], "local");
    EXPECT_FALSE(a["choices"][0]["message"]["content"].get<std::string>().empty());
  }
  const auto bad = test::run_cli(
      {"edge", "--insecure-http", "--model", model, "--cloud", cloud_url, "--kv-plan", "int2"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--kv-plan"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace ep
