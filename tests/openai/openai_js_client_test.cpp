// The official OpenAI client (npm `openai`, tests/js) streams from the cloud exactly as from an
// edge: the same chats naming a cloud prompt, streamed by the client from a cloud in relay mode and
// from an edge that fetched the prompt's KV, give the same text, finish reason and usage. Real
// processes on loopback; `./run test` installs Node.js and the client.
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <sstream>

namespace ep {
namespace {

using json = nlohmann::json;

std::filesystem::path node_binary() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    for (const char* name : {"node", "nodejs"}) {
      const auto p = std::filesystem::path(dir) / name;
      if (std::filesystem::exists(p)) return p;
    }
  }
  return {};
}

TEST(OpenAiJsClient, StreamsFromTheCloudExactlyAsFromAnEdge) {
  const auto node = node_binary();
  const auto js = test::source_dir() / "tests" / "js";
  ASSERT_FALSE(node.empty()) << "Node.js is missing (./run test installs it)";
  ASSERT_TRUE(std::filesystem::exists(js / "node_modules" / "openai"))
      << "the npm client is missing: npm ci --prefix tests/js (./run test does it)";

  const std::string model = test::default_model().string();
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0", "--cache-mode", "relay", "--max-seqs", "8"});
  const std::string cloud_url = test::start_cloud(cloud);
  httplib::Client c(cloud_url);
  const auto put = c.Put("/v1/cloud-prompts/dict",
                         json{{"text", "You are a dictionary. Explain the word in one sentence."},
                              {"chat_template", "chatml"}}
                             .dump(),
                         "application/json");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 201) << put->body;
  test::Process edge({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                      "--cloud", cloud_url, "--listen", "127.0.0.1:0", "--max-seqs", "4"});
  const std::string edge_url = test::listen_url(edge);

  const auto r =
      test::run_program(node, {(js / "stream_chats.mjs").string(), "dict", cloud_url, edge_url});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  const json& from_cloud = out[cloud_url];
  const json& from_edge = out[edge_url];
  ASSERT_EQ(from_cloud.size(), 6u);
  ASSERT_EQ(from_edge.size(), 6u);
  for (size_t i = 0; i < from_cloud.size(); ++i) {
    const json& a = from_cloud[i];
    const json& b = from_edge[i];
    EXPECT_FALSE(a["text"].get<std::string>().empty()) << i;
    EXPECT_EQ(a["text"], b["text"]) << "request " << i;
    EXPECT_EQ(a["finish"], b["finish"]) << "request " << i;
    EXPECT_GT(a["chunks"].get<int>(), 2) << "not streamed: " << a.dump();
    ASSERT_TRUE(a["usage"].is_object()) << "no usage in the last chunk: " << a.dump();
    ASSERT_TRUE(b["usage"].is_object()) << "no usage in the last chunk: " << b.dump();
    EXPECT_EQ(a["usage"]["completion_tokens"], b["usage"]["completion_tokens"]) << i;
    EXPECT_EQ(a["usage"]["prompt_tokens"], b["usage"]["prompt_tokens"]) << i;
  }
}

}  // namespace
}  // namespace ep
