// The cloud service over real sockets: `edgeprompt cloud` runs as its own process.
#include "core/thread_pool.h"
#include "model/fingerprint.h"
#include "model/model.h"
#include "protocol/kv_wire.h"
#include "runtime/transformer.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <thread>

namespace ep {
namespace {

using json = nlohmann::json;
const std::filesystem::path kModel = test::fixtures_dir() / "models" / "qwen2-bias";
const std::vector<int32_t> kPrompt = {1, 17, 400, 999, 3, 250, 251, 7, 7, 42};

std::string get_kv(const std::string& url, const std::string& id, int* status = nullptr) {
  httplib::Client c(url);
  c.set_read_timeout(30, 0);
  auto r = c.Get("/v1/cloud-prompts/" + id + "/kv");
  if (status) *status = r ? r->status : -1;
  return r ? r->body : "";
}

json put_prompt(const std::string& url, const std::string& id, const json& body, int expect,
                const std::string& token = "") {
  httplib::Client c(url);
  httplib::Headers h;
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  auto r = c.Put("/v1/cloud-prompts/" + id, h, body.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return {};
  EXPECT_EQ(r->status, expect) << r->body;
  return json::parse(r->body);
}

// What the cloud must send: the KV of the prompt computed here, in the wire format.
std::string expected_stream(const std::string& id, uint64_t version, KvDtype dtype) {
  const auto model = load_model(kModel);
  ThreadPool pool(2);
  KvStreamHeader h;
  h.fingerprint = model_fingerprint(*model->source);
  h.prompt_id = id;
  h.prompt_version = version;
  h.chat_template = "none";
  h.tokens = kPrompt;
  h.dtype = dtype;
  h.n_layers = uint32_t(model->hp.n_layer);
  h.n_kv_heads = uint32_t(model->hp.n_head_kv);
  h.head_dim = uint32_t(model->hp.head_dim);
  std::string s = encode_kv_header(h);
  Transformer tf(*model, int64_t(kPrompt.size()), pool);
  tf.set_layer_sink([&](int64_t l, const float* k, const float* v, int64_t) {
    s += encode_kv_layer(h, uint32_t(l), k, v);
  });
  std::vector<float> logits;
  tf.forward(kPrompt, logits, false);
  return s + encode_kv_end(h);
}

TEST(CloudService, RegistersPrefillsAndStreamsKv) {
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                       kModel.string(), "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  const json put = put_prompt(url, "support", {{"tokens", kPrompt}}, 201);
  EXPECT_EQ(put["id"], "support");
  EXPECT_EQ(put["version"], 1);
  EXPECT_EQ(put["n_tokens"], kPrompt.size());
  EXPECT_EQ(put["fingerprint"].get<std::string>().rfind("xxh3-128:", 0), 0u);

  int status = 0;
  const std::string kv = get_kv(url, "support", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(kv, expected_stream("support", 1, KvDtype::F16));

  // Same prompt again: same version, nothing recomputed. New tokens: a new version.
  EXPECT_EQ(put_prompt(url, "support", {{"tokens", kPrompt}}, 200)["version"], 1);
  std::vector<int32_t> other = kPrompt;
  other.push_back(5);
  EXPECT_EQ(put_prompt(url, "support", {{"tokens", other}}, 201)["version"], 2);

  httplib::Client c(url);
  auto list = c.Get("/v1/cloud-prompts");
  ASSERT_TRUE(list);
  EXPECT_EQ(json::parse(list->body)["data"].size(), 1u);
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("edgeprompt_cloud_prompts 1"), std::string::npos) << metrics->body;
  EXPECT_NE(
      metrics->body.find("edgeprompt_cloud_kv_bytes_served_total " + std::to_string(kv.size())),
      std::string::npos)
      << metrics->body;

  auto del = c.Delete("/v1/cloud-prompts/support");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200);
  get_kv(url, "support", &status);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(cloud.stop(), 0);
}

TEST(CloudService, SixteenConcurrentEdgesGetIdenticalBytes) {
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                       kModel.string(), "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  put_prompt(url, "shared", {{"tokens", kPrompt}}, 201);  // readers start while it prefills
  std::vector<std::string> got(16);
  std::vector<std::thread> edges;
  for (size_t i = 0; i < got.size(); ++i)
    edges.emplace_back([&, i] { got[i] = get_kv(url, "shared"); });
  for (auto& t : edges) t.join();
  const std::string expected = expected_stream("shared", 1, KvDtype::F16);
  for (const auto& g : got) EXPECT_EQ(g, expected);
  httplib::Client c(url);
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("edgeprompt_cloud_streams_total 16"), std::string::npos);
}

TEST(CloudService, BadRequestsGetClearHttpErrors) {
  test::ScratchDir dir;
  test::write_file(dir / "token", "s3cret\n");
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                       kModel.string(), "--listen", "127.0.0.1:0", "--admin-token-file",
                       (dir / "token").string()});
  const std::string url = test::start_cloud(cloud);
  httplib::Client c(url);
  const httplib::Headers auth = {{"Authorization", "Bearer s3cret"}};
  auto r = c.Put("/v1/cloud-prompts/a", auth, "{not json", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(json::parse(r->body)["error"]["message"].get<std::string>().find("malformed JSON"),
            std::string::npos);
  put_prompt(url, "a", {{"tokens", kPrompt}}, 401);                  // no token
  put_prompt(url, "a", {{"tokens", kPrompt}}, 401, "wrong");         // wrong token
  put_prompt(url, "a", {{"tokens", {1, 5000}}}, 400, "s3cret");      // id out of range
  put_prompt(url, "a", {{"text", "hello"}}, 400, "s3cret");          // no tokenizer in this model
  put_prompt(url, "a", {{"tokens", json::array()}}, 400, "s3cret");  // empty
  r = c.Get("/v1/cloud-prompts/missing/kv");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("unknown cloud prompt 'missing'"), std::string::npos);
  r = c.Get("/no/such/path");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(put_prompt(url, "a", {{"tokens", kPrompt}}, 201, "s3cret")["version"], 1);
  r = c.Delete("/v1/cloud-prompts/a");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
}

TEST(CloudService, CacheSurvivesRestartAndRejectsCorruptFiles) {
  test::ScratchDir dir;
  const auto cache = dir / "cache";
  std::string first;
  {
    test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                         kModel.string(), "--listen", "127.0.0.1:0", "--cache-dir", cache.string(),
                         "--kv-dtype", "f32"});
    const std::string url = test::start_cloud(cloud);
    put_prompt(url, "p1", {{"tokens", kPrompt}}, 201);
    put_prompt(url, "p2", {{"tokens", kPrompt}}, 201);
    first = get_kv(url, "p1");
    get_kv(url, "p2");  // waits for both prefills, hence both cache files
    EXPECT_EQ(first, expected_stream("p1", 1, KvDtype::F32));
  }
  // Corrupt p2's KV file: after the restart it must not be served.
  std::string bytes = test::read_file(cache / "p2.epkv");
  bytes[bytes.size() / 2] ^= 0x55;
  test::write_file(cache / "p2.epkv", bytes);
  for (const auto& e : std::filesystem::directory_iterator(cache)) {
    EXPECT_NE(e.path().extension(), ".tmp");  // no half-written files left behind
  }
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                       kModel.string(), "--listen", "127.0.0.1:0", "--cache-dir", cache.string()});
  const std::string url = test::start_cloud(cloud);
  EXPECT_EQ(get_kv(url, "p1"), first);
  int status = 0;
  get_kv(url, "p2", &status);
  EXPECT_EQ(status, 404);
  EXPECT_NE(cloud.wait_for_line("ignoring cached prompt"), "");
}

}  // namespace
}  // namespace ep
