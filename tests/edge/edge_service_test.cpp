// Cloud and edge as separate processes on loopback, talking through a recording TCP relay:
// the OpenAI-compatible API, the KV cache, faults, and the privacy property.
#include "model/gguf.h"
#include "relay/tcp_relay.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace ep {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The trained default model (models/): a real chat model with a tokenizer and ChatML template.
std::string make_chat_model(const test::ScratchDir&) {
  return test::default_model().string();
}

int port_of(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

const std::string kSystem = "You are the assistant of a small bank. Answer briefly and politely.";

void register_prompt(const std::string& cloud, const std::string& id) {
  httplib::Client c(cloud);
  auto r = c.Put("/v1/cloud-prompts/" + id,
                 json{{"text", kSystem}, {"chat_template", "chatml"}}.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
}

json chat(const std::string& edge, const json& body, int expect = 200) {
  httplib::Client c(edge);
  c.set_read_timeout(60, 0);
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return {};
  EXPECT_EQ(r->status, expect) << r->body;
  return json::parse(r->body);
}

TEST(EdgeService, PrivatePromptNeverCrossesTheNetwork) {
  test::ScratchDir dir;
  const std::string model = make_chat_model(dir);
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  TcpRelay relay(port_of(cloud_url));  // every edge<->cloud byte passes here
  test::Process edge({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                      "--cloud", relay.url(), "--listen", "127.0.0.1:0"});
  const std::string edge_url = test::listen_url(edge);
  register_prompt(cloud_url, "bank");

  const std::string secret = "zq7 account 4417 owner Wilhelmina Okonkwo-Vasquez";
  const std::string user = "Please help: " + secret;
  const json answer = chat(edge_url, {{"cloud_prompt", "bank"},
                                      {"messages", {{{"role", "user"}, {"content", user}}}},
                                      {"temperature", 0},
                                      {"max_tokens", 16}});
  const json& usage = answer["usage"];
  EXPECT_GT(usage["cloud_tokens"].get<int>(), 5);
  EXPECT_GT(usage["edge_tokens"].get<int>(), 5);
  EXPECT_EQ(usage["timings"]["kv_source"], "stream");
  EXPECT_GT(usage["timings"]["kv_bytes_received"].get<int>(), 1000);

  // Nothing of the private prompt in the capture: not its text, not its token ids (as
  // little-endian int32 runs or as decimal lists).
  const std::string up = relay.client_to_server(), down = relay.server_to_client();
  ASSERT_GT(down.size(), 1000u);
  for (const std::string& needle : {secret, std::string("Wilhelmina"), std::string("4417")}) {
    EXPECT_EQ(up.find(needle), std::string::npos) << needle;
    EXPECT_EQ(down.find(needle), std::string::npos) << needle;
  }
  const auto tokenizer = Tokenizer::from_gguf(*GgufFile::open(model));
  const std::vector<int32_t> ids = tokenizer->encode(secret, false, false);
  ASSERT_GE(ids.size(), 4u);
  const std::string binary(reinterpret_cast<const char*>(ids.data()), ids.size() * 4);
  std::string decimal;
  for (size_t i = 0; i < ids.size(); ++i) decimal += (i ? "," : "") + std::to_string(ids[i]);
  for (const std::string* capture : {&up, &down}) {
    EXPECT_EQ(capture->find(binary), std::string::npos);
    EXPECT_EQ(capture->find(decimal), std::string::npos);
  }

  // The same answer as a fully local run of cloud text + private prompt.
  const auto local =
      test::run_cli({"run", "--precision", "exact", "--model", model, "--system", kSystem,
                     "--prompt", user, "--chat-template", "chatml", "--temp", "0", "-n", "16"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  std::string local_text = local.out;
  if (!local_text.empty() && local_text.back() == '\n') local_text.pop_back();  // run ends the line
  EXPECT_EQ(answer["choices"][0]["message"]["content"].get<std::string>(), local_text);
  EXPECT_FALSE(local_text.empty());
}

TEST(EdgeService, StreamsServerSentEventsAndReusesItsKvCache) {
  test::ScratchDir dir;
  const std::string model = make_chat_model(dir);
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  register_prompt(cloud_url, "bank");
  const json body = {
      {"cloud_prompt", "bank"},
      {"messages", {{{"role", "user"}, {"content", "What are your opening hours?"}}}},
      {"temperature", 0},
      {"max_tokens", 8}};
  std::string first_text;
  {
    test::Process edge({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                        "--cloud", cloud_url, "--listen", "127.0.0.1:0", "--kv-cache-dir",
                        (dir / "kv").string()});
    const std::string edge_url = test::listen_url(edge);
    const json a = chat(edge_url, body);
    first_text = a["choices"][0]["message"]["content"];
    EXPECT_EQ(a["usage"]["timings"]["kv_source"], "stream");
    const json b = chat(edge_url, body);
    EXPECT_EQ(b["usage"]["timings"]["kv_source"], "edge-cache");
    EXPECT_EQ(b["choices"][0]["message"]["content"], first_text);

    // Streaming: chunks whose contents add up to the same text, usage in the last one.
    httplib::Client c(edge_url);
    json sbody = body;
    sbody["stream"] = true;
    auto r = c.Post("/v1/chat/completions", sbody.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
    std::string text;
    json last;
    size_t at = 0;
    int events = 0;
    while ((at = r->body.find("data: ", at)) != std::string::npos) {
      const size_t end = r->body.find("\n\n", at);
      const std::string data = r->body.substr(at + 6, end - at - 6);
      at = end;
      ++events;
      if (data == "[DONE]") break;
      last = json::parse(data);
      const json& delta = last["choices"][0]["delta"];
      if (delta.contains("content")) text += delta["content"].get<std::string>();
    }
    EXPECT_GE(events, 3);
    EXPECT_EQ(text, first_text);
    EXPECT_TRUE(last.contains("usage"));
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find("edgeprompt_edge_kv_cache_hits_total 2"), std::string::npos) << m->body;
  }
  // After a restart the edge still has the KV: no stream needed.
  test::Process edge({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                      "--cloud", cloud_url, "--listen", "127.0.0.1:0", "--kv-cache-dir",
                      (dir / "kv").string()});
  const json c2 = chat(test::listen_url(edge), body);
  EXPECT_EQ(c2["usage"]["timings"]["kv_source"], "edge-cache");
  EXPECT_EQ(c2["choices"][0]["message"]["content"], first_text);
}

TEST(EdgeService, ErrorsAreHttpCodesWithMessages) {
  test::ScratchDir dir;
  const std::string model = make_chat_model(dir);
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                       (test::fixtures_dir() / "models" / "llama-gqa").string(), "--listen",
                       "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  test::Process edge({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                      "--cloud", cloud_url, "--listen", "127.0.0.1:0"});
  const std::string edge_url = test::listen_url(edge);
  httplib::Client c(edge_url);
  auto r = c.Post("/v1/chat/completions", "{oops", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("malformed JSON"), std::string::npos);
  chat(edge_url, {{"messages", json::array()}}, 400);
  chat(edge_url, {{"cloud_prompt", "nope"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}},
       404);
  // The cloud runs another model (same weights, no tokenizer: another fingerprint): 409.
  httplib::Client cc(cloud_url);
  ASSERT_EQ(
      cc.Put("/v1/cloud-prompts/p", json{{"tokens", {1, 2, 3}}}.dump(), "application/json")->status,
      201);
  const json mismatch =
      chat(edge_url, {{"cloud_prompt", "p"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}},
           409);
  EXPECT_NE(mismatch["error"]["message"].get<std::string>().find("model mismatch"),
            std::string::npos);
  // A local request works without the cloud.
  const json local = chat(
      edge_url,
      {{"messages",
        {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "hello"}}}},
       {"max_tokens", 4},
       {"temperature", 0}});
  EXPECT_EQ(local["usage"]["cloud_tokens"], 0);
  // Cloud gone: a clear 502, quickly (for a prompt the edge has not described within
  // --revalidate-s, so it must ask).
  cloud.stop();
  const json gone =
      chat(edge_url, {{"cloud_prompt", "q"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}},
           502);
  EXPECT_NE(gone["error"]["message"].get<std::string>().find("unreachable"), std::string::npos);
}

}  // namespace
}  // namespace ep

namespace ep {
namespace {

TEST(EdgeService, OneShotRunWithCloudPromptPrintsTimeline) {
  test::ScratchDir dir;
  const std::string model = make_chat_model(dir);
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  register_prompt(cloud_url, "bank");
  const std::string user = "Can I open an account online?";
  const auto split = test::run_cli({"run", "--precision", "exact", "--model", model, "--cloud",
                                    cloud_url, "--cloud-prompt", "bank", "--prompt", user, "--temp",
                                    "0", "-n", "12", "--timeline"});
  ASSERT_EQ(split.exit_code, 0) << split.err;
  const auto local =
      test::run_cli({"run", "--precision", "exact", "--model", model, "--system", kSystem,
                     "--prompt", user, "--chat-template", "chatml", "--temp", "0", "-n", "12"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_EQ(split.out, local.out);
  EXPECT_NE(split.err.find("overlap model"), std::string::npos) << split.err;
  EXPECT_NE(split.err.find("kv arrived ms"), std::string::npos) << split.err;
  const auto bad = test::run_cli({"run", "--precision", "exact", "--model", model, "--cloud",
                                  cloud_url, "--cloud-prompt", "nope", "--prompt", user});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("unknown cloud prompt 'nope'"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace ep

namespace ep {
namespace {

// Over a link with 40 ms each way, the timeline counts from the request's arrival: the metadata
// round trip and the stream's first round trip come before the first layer can arrive, and the
// time to first token includes them.
TEST(EdgeService, TimelineCountsFromTheRequestOverASlowLink) {
  const std::string model = test::default_model().string();
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  register_prompt(cloud_url, "bank");
  TcpRelay relay(port_of(cloud_url), {}, "127.0.0.1", "127.0.0.1", 0,
                 LinkShape{0, std::chrono::milliseconds(40)});
  test::Process edge({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                      "--cloud", relay.url(), "--listen", "127.0.0.1:0"});
  const std::string edge_url = test::listen_url(edge);
  const json body = {{"cloud_prompt", "bank"},
                     {"messages", {{{"role", "user"}, {"content", "Hello"}}}},
                     {"temperature", 0},
                     {"max_tokens", 2}};
  const json t = chat(edge_url, body)["usage"]["timings"];
  EXPECT_GE(t["layers"][0]["kv_arrival_ms"].get<double>(), 160);
  EXPECT_GE(t["setup_ms"].get<double>(), 160);
  EXPECT_GE(t["ttft_ms"].get<double>(), t["setup_ms"].get<double>());
  EXPECT_EQ(t["kv_source"], "stream");
  // Cached, and the prompt's description checked less than --revalidate-s (2 s) ago: no round
  // trip at all, so nothing of the request's timing reaches the cloud.
  const json c = chat(edge_url, body)["usage"]["timings"];
  EXPECT_EQ(c["kv_source"], "edge-cache");
  EXPECT_LT(c["ttft_ms"].get<double>(), 80);
  // With --revalidate-s 0 a cached request still pays the (conditional) metadata round trip.
  test::Process eager({"edge", "--insecure-http", "--precision", "exact", "--model", model,
                       "--cloud", relay.url(), "--listen", "127.0.0.1:0", "--revalidate-s", "0"});
  const std::string eager_url = test::listen_url(eager);
  chat(eager_url, body);
  const json e = chat(eager_url, body)["usage"]["timings"];
  EXPECT_EQ(e["kv_source"], "edge-cache");
  EXPECT_GE(e["ttft_ms"].get<double>(), 80);
  EXPECT_LT(e["ttft_ms"].get<double>(), t["ttft_ms"].get<double>());
}

}  // namespace
}  // namespace ep
