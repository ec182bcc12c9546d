// The cloud's OpenAI API on its serving engine, as real processes on loopback: concurrent chat
// requests naming a registered cloud prompt answer the same in every cache mode and the same as
// an edge that received the prompt's KV; streaming gives the same text; bad requests get clear
// 4xx errors; the engine's metrics are exposed.
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <string>
#include <thread>
#include <vector>

namespace ep {
namespace {

using json = nlohmann::json;

const char* const kWords[] = {"river", "bright",  "ancient", "harbour", "curious",  "lantern",
                              "quiet", "gravity", "meadow",  "velvet",  "stubborn", "to wander"};

void register_prompt(const std::string& cloud) {
  httplib::Client c(cloud);
  auto r = c.Put("/v1/cloud-prompts/dict",
                 json{{"text",
                       "You are a dictionary. Explain the word the user asks about in one "
                       "sentence."},
                      {"chat_template", "chatml"}}
                     .dump(),
                 "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
}

json body(size_t i) {
  return {
      {"cloud_prompt", "dict"},
      {"temperature", 0},
      {"max_tokens", 6 + int(i % 5) * 3},
      {"messages",
       {{{"role", "user"},
         {"content", std::string("What does \"") + kWords[i % std::size(kWords)] + "\" mean?"}}}}};
}

json post(const std::string& url, const json& b, int expect = 200,
          const std::string& path = "/v1/chat/completions") {
  httplib::Client c(url);
  c.set_read_timeout(120, 0);
  auto r = c.Post(path, b.dump(), "application/json");
  EXPECT_TRUE(r) << httplib::to_string(r.error());
  if (!r) return {};
  EXPECT_EQ(r->status, expect) << r->body;
  return json::parse(r->body);
}

// Every request at once, each from its own thread; the answers' texts in order.
std::vector<std::string> concurrently(const std::string& url, size_t n) {
  std::vector<std::string> texts(n);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      const json a = post(url, body(i));
      if (a.contains("choices")) texts[i] = a["choices"][0]["message"]["content"];
    });
  }
  for (auto& t : threads) t.join();
  return texts;
}

TEST(CloudCompletions, EveryCacheModeAndTheEdgeGiveTheSameAnswers) {
  const std::string model = test::default_model().string();
  constexpr size_t kRequests = 24;
  std::vector<std::vector<std::string>> answers;
  std::string relay_url;
  std::vector<std::unique_ptr<test::Process>> clouds;
  for (const char* mode : {"none", "prefix", "relay"}) {
    clouds.push_back(std::make_unique<test::Process>(std::vector<std::string>{
        "cloud", "--insecure-http", "--precision", "exact", "--model", model, "--listen",
        "127.0.0.1:0", "--cache-mode", mode, "--max-seqs", "8", "--max-batched-tokens", "64",
        "--kv-cache-bytes", "67108864"}));
    const std::string url = test::start_cloud(*clouds.back());
    register_prompt(url);
    answers.push_back(concurrently(url, kRequests));
    const json a = post(url, body(0));
    EXPECT_EQ(a["usage"]["cloud_tokens"].get<int>() > 0, true);
    EXPECT_EQ(a["usage"]["timings"]["kv_source"],
              std::string(mode) == "relay" ? "cloud-relay" : "cloud-prefill");
    if (std::string(mode) == "relay") relay_url = url;
  }
  // An edge serving four users at once, its cloud prompt streamed from the relay cloud.
  test::Process edge({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                      "--cloud", relay_url, "--listen", "127.0.0.1:0", "--max-seqs", "4"});
  const std::string edge_url = test::listen_url(edge);
  answers.push_back(concurrently(edge_url, kRequests));
  for (size_t i = 0; i < kRequests; ++i) {
    EXPECT_FALSE(answers[0][i].empty()) << i;
    for (size_t m = 1; m < answers.size(); ++m) {
      EXPECT_EQ(answers[m][i], answers[0][i]) << "request " << i << ", server " << m;
    }
  }
  httplib::Client c(relay_url);
  const auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* name : {"edgeprompt_requests_running 0", "edgeprompt_requests_waiting 0",
                           "edgeprompt_kv_blocks_used 0", "edgeprompt_kv_blocks_total ",
                           "edgeprompt_preemptions_total "}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name << "\n" << metrics->body;
  }
}

TEST(CloudCompletions, StreamsTheSameTextAndAnswersBadRequestsClearly) {
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                       test::default_model().string(), "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  register_prompt(url);
  const json whole = post(url, body(3));
  json streamed_body = body(3);
  streamed_body["stream"] = true;
  httplib::Client c(url);
  auto r = c.Post("/v1/chat/completions", streamed_body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  std::string text;
  json last;
  size_t at = 0;
  while ((at = r->body.find("data: ", at)) != std::string::npos) {
    const size_t end = r->body.find("\n\n", at);
    const std::string event = r->body.substr(at + 6, end - at - 6);
    at = end;
    if (event == "[DONE]") break;
    last = json::parse(event);
    const json& delta = last["choices"][0]["delta"];
    if (delta.contains("content")) text += delta["content"].get<std::string>();
  }
  EXPECT_EQ(text, whole["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_TRUE(last.contains("usage"));
  // Completions without a cloud prompt, text and ids.
  const json plain = post(url, {{"prompt", "The river"}, {"max_tokens", 4}, {"temperature", 0}},
                          200, "/v1/completions");
  EXPECT_EQ(plain["usage"]["completion_tokens"].get<int>(), 4);
  EXPECT_EQ(plain["usage"]["cloud_tokens"].get<int>(), 0);
  // Errors, each before any work.
  post(url, {{"cloud_prompt", "nope"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}}, 404);
  EXPECT_NE(post(url, json::object(), 400)["error"]["message"].get<std::string>().find("messages"),
            std::string::npos);
  const json too_long =
      post(url, {{"prompt", "The river"}, {"max_tokens", 100000}, {"temperature", 0}}, 400,
           "/v1/completions");
  EXPECT_NE(too_long["error"]["message"].get<std::string>().find("context"), std::string::npos);
  post(url, {{"prompt", {1, 999999}}}, 400, "/v1/completions");
  const auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["object"], "model");
}

}  // namespace
}  // namespace ep
