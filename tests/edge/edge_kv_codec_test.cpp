// KV codecs negotiated between real processes: an edge started with --kv-codec C asks the cloud
// for C, the cloud transcodes, the edge decodes, answers, and caches what it received; with
// every codec the recording between the two holds nothing of the private prompt. The cloud
// answers the kept form (f16) to a client that names no codec and refuses an unknown one.
#include "model/gguf.h"
#include "relay/tcp_relay.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <map>

namespace ep {
namespace {

using json = nlohmann::json;

int port_of(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

// Long enough (a few hundred tokens) for int4 to quantise most of it beyond its f16 window.
std::string long_system() {
  std::string s = "You are the assistant of a small bank. Answer briefly and politely.";
  for (const char* rule :
       {"Opening hours are nine to five on weekdays.", "Cards can be blocked by phone at any time.",
        "Transfers abroad take two working days.", "Savings accounts pay interest monthly.",
        "Never ask for a full card number or a password.", "Loans need an appointment."}) {
    for (int i = 0; i < 4; ++i) s += std::string(" ") + rule;
  }
  return s;
}

json chat(const std::string& edge, const std::string& user) {
  httplib::Client c(edge);
  c.set_read_timeout(120, 0);
  const json body = {{"cloud_prompt", "bank"},
                     {"messages", {{{"role", "user"}, {"content", user}}}},
                     {"temperature", 0},
                     {"max_tokens", 8}};
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return {};
  EXPECT_EQ(r->status, 200) << r->body;
  return json::parse(r->body);
}

TEST(EdgeKvCodec, EveryCodecAnswersAndThePrivatePromptNeverCrosses) {
  const std::string model = test::default_model().string();
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model", model,
                       "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  {
    httplib::Client c(cloud_url);
    auto r = c.Put("/v1/cloud-prompts/bank",
                   json{{"text", long_system()}, {"chat_template", "chatml"}}.dump(),
                   "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  const std::string secret = "zq7 account 4417 owner Wilhelmina Okonkwo-Vasquez";
  const std::string user = "Please help: " + secret;
  const auto tokenizer = Tokenizer::from_gguf(*GgufFile::open(model));
  const std::vector<int32_t> ids = tokenizer->encode(secret, false, false);
  ASSERT_GE(ids.size(), 4u);
  const std::string binary(reinterpret_cast<const char*>(ids.data()), ids.size() * 4);
  std::string decimal;
  for (size_t i = 0; i < ids.size(); ++i) decimal += (i ? "," : "") + std::to_string(ids[i]);

  std::map<std::string, double> received;
  std::map<std::string, std::string> answers;
  for (const std::string codec : {"", "f16+zstd", "int8", "int8+zstd", "int4", "int4+zstd"}) {
    SCOPED_TRACE("codec " + codec);
    TcpRelay relay(port_of(cloud_url));
    std::vector<std::string> args = {
        "edge", "--insecure-http", "--precision", "exact",    "--model",
        model,  "--cloud",         relay.url(),   "--listen", "127.0.0.1:0"};
    if (!codec.empty()) {
      args.push_back("--kv-codec");
      args.push_back(codec);
    }
    test::Process edge(args);
    const std::string edge_url = test::listen_url(edge);
    const json a = chat(edge_url, user);
    const json& t = a["usage"]["timings"];
    EXPECT_EQ(t["kv_source"], "stream");
    EXPECT_EQ(t["kv_codec"], codec.empty() ? "f16" : codec);
    received[codec] = t["kv_bytes_received"].get<double>();
    answers[codec] = a["choices"][0]["message"]["content"];
    EXPECT_FALSE(answers[codec].empty());
    // The second request is served from what was received, decoded the same way.
    const json b = chat(edge_url, user);
    EXPECT_EQ(b["usage"]["timings"]["kv_source"], "edge-cache");
    EXPECT_EQ(b["choices"][0]["message"]["content"], answers[codec]);

    const std::string up = relay.client_to_server(), down = relay.server_to_client();
    ASSERT_GT(down.size(), 1000u);
    EXPECT_NE(up.find(codec.empty() ? "/kv " : "codec="), std::string::npos);
    for (const std::string* capture : {&up, &down}) {
      for (const std::string& needle :
           {secret, std::string("Wilhelmina"), std::string("4417"), binary, decimal}) {
        EXPECT_EQ(capture->find(needle), std::string::npos);
      }
    }
  }
  // zstd on f16 is lossless: the same answer in fewer bytes; int8 and int4 take about 1/2 and
  // well under 1/3 of f16's bytes.
  EXPECT_EQ(answers["f16+zstd"], answers[""]);
  EXPECT_LT(received["f16+zstd"], received[""]);
  EXPECT_LT(received["int8"], 0.55 * received[""]);
  EXPECT_LT(received["int4"], 0.34 * received[""]);
  EXPECT_LE(received["int4+zstd"], received["int4"]);
}

TEST(EdgeKvCodec, TheCloudAnswersTheKeptFormOrTheAskedCodecAndRefusesUnknownOnes) {
  const std::string model = test::default_model().string();
  test::Process cloud({"cloud", "--insecure-http", "--model", model, "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  httplib::Client c(cloud_url);
  auto put =
      c.Put("/v1/cloud-prompts/bank",
            json{{"text", long_system()}, {"chat_template", "chatml"}}.dump(), "application/json");
  ASSERT_TRUE(put);
  auto plain = c.Get("/v1/cloud-prompts/bank/kv");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
  EXPECT_EQ(plain->get_header_value("X-EdgePrompt-KV-Codec"), "f16");
  auto int4 = c.Get("/v1/cloud-prompts/bank/kv?codec=int4%2Bzstd");
  ASSERT_TRUE(int4);
  EXPECT_EQ(int4->status, 200);
  EXPECT_EQ(int4->get_header_value("X-EdgePrompt-KV-Codec"), "int4+zstd");
  EXPECT_LT(int4->body.size() * 3, plain->body.size());
  auto bad = c.Get("/v1/cloud-prompts/bank/kv?codec=int3");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("codec 'int3'"), std::string::npos) << bad->body;
}

}  // namespace
}  // namespace ep
