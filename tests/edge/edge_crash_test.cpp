// An edge killed (SIGKILL) while it receives and caches a cloud prompt's KV, at several moments:
// the next edge on the same cache directory starts (the dead one's lock is gone with it), drops
// whatever the kill left half-written, and answers as an edge that was never killed.
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

namespace ep {
namespace {

using json = nlohmann::json;

std::string answer(const std::string& edge, std::string* source = nullptr) {
  httplib::Client c(edge);
  c.set_read_timeout(60, 0);
  const json body = {{"cloud_prompt", "bank"},
                     {"messages", {{{"role", "user"}, {"content", "When do transfers arrive?"}}}},
                     {"temperature", 0},
                     {"max_tokens", 6}};
  const auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  if (!r || r->status != 200) return "";
  const json j = json::parse(r->body);
  if (source) *source = j["usage"]["timings"]["kv_source"];
  return j["choices"][0]["message"]["content"];
}

TEST(EdgeCrash, AnEdgeKilledWhileCachingLeavesADirectoryTheNextEdgeUses) {
  const std::string model = test::default_model().string();
  test::Process cloud({"cloud", "--insecure-http", "--model", model, "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  std::string system = "You are the assistant of a small bank. Answer briefly.";
  for (int i = 0; i < 30; ++i) system += " Transfers abroad take two working days.";
  {
    httplib::Client c(cloud_url);
    const auto r =
        c.Put("/v1/cloud-prompts/bank", json{{"text", system}, {"chat_template", "chatml"}}.dump(),
              "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  const std::vector<std::string> args = {"edge",    "--insecure-http", "--model",  model,
                                         "--cloud", cloud_url,         "--listen", "127.0.0.1:0"};
  std::string expected;
  {
    test::Process plain(args);  // no cache directory: the reference answer
    expected = answer(test::listen_url(plain));
    ASSERT_FALSE(expected.empty());
  }
  for (const int delay_ms : {0, 5, 20, 60, 200}) {
    SCOPED_TRACE("killed after " + std::to_string(delay_ms) + " ms");
    test::ScratchDir dir;
    std::vector<std::string> cached = args;
    cached.insert(cached.end(), {"--kv-cache-dir", dir.path().string()});
    {
      test::Process edge(cached);
      const std::string url = test::listen_url(edge);
      std::thread request([&] { answer(url); });
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      edge.kill_now();
      request.join();
    }
    test::Process next(cached);
    const std::string url = test::listen_url(next);
    std::string source;
    EXPECT_EQ(answer(url, &source), expected);
    EXPECT_TRUE(source == "stream" || source == "edge-cache") << source;
    std::string again_source;
    EXPECT_EQ(answer(url, &again_source), expected);
    EXPECT_EQ(again_source, "edge-cache");
    for (const auto& e : std::filesystem::directory_iterator(dir.path()))
      EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  }
}

}  // namespace
}  // namespace ep
