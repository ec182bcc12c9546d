// One fetch per cloud prompt however many requests wait for it (edge/cloud_kv_source.h), with
// real processes: requests that arrive while the prompt's KV is streaming over a slow link join
// that stream instead of starting their own, and all answer alike.
#include "relay/tcp_relay.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <thread>
#include <vector>

namespace ep {
namespace {

using json = nlohmann::json;

int port_of(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

double metric(const std::string& url, const std::string& name) {
  httplib::Client c(url);
  const auto r = c.Get("/metrics");
  std::smatch m;
  if (!r || !std::regex_search(r->body, m, std::regex("\n" + name + " ([0-9.e+]+)\n"))) return -1;
  return std::stod(m[1]);
}

TEST(CloudKvSource, RequestsWaitingForOnePromptShareOneStream) {
  const std::string model = test::default_model().string();
  test::Process cloud({"cloud", "--insecure-http", "--model", model, "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  std::string system = "You are the assistant of a small bank. Answer briefly.";
  for (int i = 0; i < 20; ++i) system += " Transfers abroad take two working days.";
  {
    httplib::Client c(cloud_url);
    const auto r =
        c.Put("/v1/cloud-prompts/bank", json{{"text", system}, {"chat_template", "chatml"}}.dump(),
              "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  // A 2 MB/s link: the stream (about a megabyte) takes long enough for every request to find
  // it in progress.
  LinkShape slow;
  slow.bytes_per_second = 2e6;
  TcpRelay link(port_of(cloud_url), {}, "127.0.0.1", "127.0.0.1", 0, slow);
  test::Process edge({"edge", "--insecure-http", "--model", model, "--cloud", link.url(),
                      "--listen", "127.0.0.1:0"});
  const std::string edge_url = test::listen_url(edge);
  constexpr int kRequests = 6;
  std::vector<json> answers(kRequests);
  std::vector<std::thread> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      httplib::Client c(edge_url);
      c.set_read_timeout(120, 0);
      const json body = {
          {"cloud_prompt", "bank"},
          {"messages", {{{"role", "user"}, {"content", "When do transfers arrive?"}}}},
          {"temperature", 0},
          {"max_tokens", 6}};
      const auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
      if (r && r->status == 200) answers[size_t(i)] = json::parse(r->body);
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_FALSE(answers[size_t(i)].is_null()) << "request " << i;
    EXPECT_EQ(answers[size_t(i)]["choices"][0]["message"]["content"],
              answers[0]["choices"][0]["message"]["content"]);
  }
  EXPECT_EQ(metric(cloud_url, "edgeprompt_cloud_streams_total"), 1);
  // Cached once, by the request that started the stream: the next is a hit.
  httplib::Client c(edge_url);
  const json body = {{"cloud_prompt", "bank"},
                     {"messages", {{{"role", "user"}, {"content", "Hello"}}}},
                     {"max_tokens", 2}};
  const auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["usage"]["timings"]["kv_source"], "edge-cache") << r->body;
  EXPECT_EQ(metric(cloud_url, "edgeprompt_cloud_streams_total"), 1);
}

}  // namespace
}  // namespace ep
