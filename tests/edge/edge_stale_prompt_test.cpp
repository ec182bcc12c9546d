// A cloud prompt deleted or replaced while an edge holds its KV (real cloud and edge processes):
// the edge serves the new prompt's KV or a 404, never the old one. Versions of an id never
// repeat, so the edge's cache (keyed by id and version) cannot take a new prompt for an old one:
// not after a delete, and not after a cloud restart with its cache directory.
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ep {
namespace {

using json = nlohmann::json;

std::string url_in(const std::string& line) {
  const size_t at = line.find("http://");
  if (at == std::string::npos) throw std::runtime_error("no URL in: " + line);
  return line.substr(at, line.find(' ', at) - at);
}

json put(const std::string& cloud, const std::string& text) {
  httplib::Client c(cloud);
  auto r = c.Put("/v1/cloud-prompts/bank", json{{"text", text}, {"chat_template", "chatml"}}.dump(),
                 "application/json");
  if (!r || (r->status != 200 && r->status != 201)) throw std::runtime_error("PUT failed");
  return json::parse(r->body);
}

void erase(const std::string& cloud) {
  httplib::Client c(cloud);
  auto r = c.Delete("/v1/cloud-prompts/bank");
  if (!r || r->status != 200) throw std::runtime_error("DELETE failed");
}

httplib::Result chat(const std::string& edge) {
  httplib::Client c(edge);
  c.set_read_timeout(std::chrono::seconds(60));
  const json req = {{"cloud_prompt", "bank"},
                    {"max_tokens", 2},
                    {"temperature", 0},
                    {"messages", {{{"role", "user"}, {"content", "my balance?"}}}}};
  return c.Post("/v1/chat/completions", req.dump(), "application/json");
}

const std::string kOld = "You are the assistant of a small bank.";
const std::string kNew = "You are the assistant of a large insurance company; answer in one line.";

TEST(EdgeStalePrompt, ReplacedOrDeletedPromptIsNeverServedFromTheOldKv) {
  test::ScratchDir dir;
  test::Process cloud({"cloud", "--insecure-http", "--model", test::default_model().string(),
                       "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  test::Process edge({"edge", "--insecure-http", "--model", test::default_model().string(),
                      "--cloud", cloud_url, "--listen", "127.0.0.1:0", "--kv-cache-dir",
                      (dir / "edge-cache").string(), "--revalidate-s", "0"});
  const std::string edge_url = url_in(edge.wait_for_line("listening on http://"));

  const json old_prompt = put(cloud_url, kOld);
  auto first = chat(edge_url);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  auto cached = chat(edge_url);
  ASSERT_EQ(cached->status, 200) << cached->body;
  EXPECT_EQ(json::parse(cached->body)["usage"]["timings"]["kv_source"], "edge-cache");

  // Deleted and registered again with another text: a new version, streamed, the new length.
  erase(cloud_url);
  const json new_prompt = put(cloud_url, kNew);
  EXPECT_GT(new_prompt["version"].get<uint64_t>(), old_prompt["version"].get<uint64_t>());
  ASSERT_NE(new_prompt["n_tokens"], old_prompt["n_tokens"]);
  auto fresh = chat(edge_url);
  ASSERT_EQ(fresh->status, 200) << fresh->body;
  const json body = json::parse(fresh->body);
  EXPECT_EQ(body["usage"]["timings"]["kv_source"], "stream");
  EXPECT_EQ(body["usage"]["cloud_tokens"], new_prompt["n_tokens"]);
  EXPECT_EQ(body["cloud_prompt"]["version"], new_prompt["version"]);

  // Deleted: the edge answers 404 although it still holds KV of the id.
  erase(cloud_url);
  auto gone = chat(edge_url);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404) << gone->body;

  // The first text again, after all that: still a version never seen before.
  EXPECT_GT(put(cloud_url, kOld)["version"].get<uint64_t>(), new_prompt["version"].get<uint64_t>());
}

// The lines of the cloud's request log for GET `route`.
std::vector<json> log_lines(const std::filesystem::path& log, const std::string& route) {
  std::vector<json> out;
  std::istringstream in(test::read_file(log));
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    if (j["route"] == route && j["method"] == "GET") out.push_back(j);
  }
  return out;
}

TEST(EdgeStalePrompt, RevalidationIsConditionalAndAtMostEveryRevalidateSeconds) {
  test::ScratchDir dir;
  const auto log = dir / "cloud.log";
  test::Process cloud({"cloud", "--insecure-http", "--model", test::default_model().string(),
                       "--listen", "127.0.0.1:0", "--log-file", log.string()});
  const std::string cloud_url = test::start_cloud(cloud);
  put(cloud_url, kOld);
  const auto edge_with = [&](const char* revalidate_s) {
    return std::make_unique<test::Process>(std::vector<std::string>{
        "edge", "--insecure-http", "--model", test::default_model().string(), "--cloud", cloud_url,
        "--listen", "127.0.0.1:0", "--revalidate-s", revalidate_s});
  };
  const auto wait_log = [&](size_t n) {  // lines are written once each answer went out
    for (int i = 0; i < 200 && log_lines(log, "/v1/cloud-prompts/bank").size() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return log_lines(log, "/v1/cloud-prompts/bank");
  };
  {
    // Within the window: three requests, one description asked for, one KV stream.
    auto edge = edge_with("600");
    const std::string url = url_in(edge->wait_for_line("listening on http://"));
    for (int i = 0; i < 3; ++i) ASSERT_EQ(chat(url)->status, 200);
    const auto gets = wait_log(1);
    ASSERT_EQ(gets.size(), 1u);
    EXPECT_EQ(gets[0]["status"], 200);
    EXPECT_EQ(log_lines(log, "/v1/cloud-prompts/bank/kv").size(), 1u);
  }
  {
    // Revalidating every request: the repeats are bodiless 304s while the prompt is unchanged.
    auto edge = edge_with("0");
    const std::string url = url_in(edge->wait_for_line("listening on http://"));
    for (int i = 0; i < 3; ++i) ASSERT_EQ(chat(url)->status, 200);
    const auto gets = wait_log(4);
    ASSERT_EQ(gets.size(), 4u);
    EXPECT_EQ(gets[1]["status"], 200);
    EXPECT_EQ(gets[2]["status"], 304);
    EXPECT_EQ(gets[3]["status"], 304);
    EXPECT_EQ(gets[3]["bytes_out"], 0);
    // Replaced: the next revalidation sees it at once.
    put(cloud_url, kNew);
    auto fresh = chat(url);
    ASSERT_EQ(fresh->status, 200);
    EXPECT_EQ(json::parse(fresh->body)["usage"]["timings"]["kv_source"], "stream");
  }
}

TEST(EdgeStalePrompt, VersionsContinueAfterACloudRestart) {
  test::ScratchDir dir;
  const std::vector<std::string> args = {
      "cloud",    "--insecure-http", "--model",     test::default_model().string(),
      "--listen", "127.0.0.1:0",     "--cache-dir", (dir / "cloud-cache").string()};
  uint64_t before = 0;
  {
    test::Process cloud(args);
    const std::string url = test::start_cloud(cloud);
    put(url, kOld);
    before = put(url, kNew)["version"].get<uint64_t>();
    erase(url);  // answered only once the deletion is on disk
  }
  test::Process cloud(args);
  const std::string url = test::start_cloud(cloud);
  httplib::Client c(url);
  EXPECT_EQ(c.Get("/v1/cloud-prompts/bank")->status, 404);  // the delete survived the restart
  EXPECT_GT(put(url, kOld)["version"].get<uint64_t>(), before);
}

}  // namespace
}  // namespace ep
