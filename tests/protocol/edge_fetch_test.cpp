// The edge fetching a cloud prompt's KV over real sockets and computing against it as it
// arrives; faults injected by a relay between the two.
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/fingerprint.h"
#include "model/model.h"
#include "protocol/kv_fetch.h"
#include "relay/tcp_relay.h"
#include "runtime/transformer.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>

namespace ep {
namespace {

using json = nlohmann::json;
const std::filesystem::path kModels = test::fixtures_dir() / "models";

std::vector<int32_t> prompt_ids(const std::string& model) {
  std::vector<int32_t> ids;
  std::string s = test::read_file(kModels / model / "reference" / "prompt_150.txt");
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find_first_of(",\n", i);
    if (j == std::string::npos) j = s.size();
    if (j > i) ids.push_back(std::stoi(s.substr(i, j - i)));
    i = j + 1;
  }
  return ids;
}

int port_of(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

void register_prompt(const std::string& url, const std::string& id, const std::vector<int32_t>& t) {
  httplib::Client c(url);
  auto r = c.Put("/v1/cloud-prompts/" + id, json{{"tokens", t}}.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
}

double rel(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

struct Fixture {
  std::string model_name = "llama3-rope";
  std::unique_ptr<Model> model = load_model(kModels / model_name);
  std::string fingerprint = model_fingerprint(*model->source);
  std::vector<int32_t> ids = prompt_ids(model_name);
  int64_t split = 100;
  std::vector<int32_t> cloud_ids{ids.begin(), ids.begin() + split};
  std::vector<int32_t> edge_ids{ids.begin() + split, ids.end()};

  std::vector<float> monolithic_edge_logits() {
    ThreadPool pool(2);
    Transformer tf(*model, int64_t(ids.size()), pool);
    std::vector<float> all;
    tf.forward(ids, all, true);
    return {all.begin() + split * model->hp.n_vocab, all.end()};
  }

  std::vector<float> edge_logits(const std::string& url) {
    CloudKvFetch fetch(url, "sys", *model, fingerprint);
    ThreadPool pool(2);
    Transformer tf(*model, int64_t(edge_ids.size()), pool, fetch.segment());
    std::vector<float> logits;
    tf.forward(edge_ids, logits, true);
    return logits;
  }
};

TEST(EdgeFetch, StreamedKvGivesMonolithicLogits) {
  Fixture f;
  for (const char* dtype : {"f32", "f16"}) {
    test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                         (kModels / f.model_name).string(), "--listen", "127.0.0.1:0", "--kv-dtype",
                         dtype});
    const std::string url = test::start_cloud(cloud);
    register_prompt(url, "sys", f.cloud_ids);
    const double e = rel(f.edge_logits(url), f.monolithic_edge_logits());
    if (std::string(dtype) == "f32") {
      EXPECT_LE(e, 1e-5);
    } else {
      EXPECT_LE(e, 2e-3);
      EXPECT_GT(e, 0.0);
    }
  }
}

TEST(EdgeFetch, CorruptOrTruncatedStreamIsRetriedOnceThenFails) {
  Fixture f;
  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                       (kModels / f.model_name).string(), "--listen", "127.0.0.1:0", "--kv-dtype",
                       "f32"});
  const std::string url = test::start_cloud(cloud);
  register_prompt(url, "sys", f.cloud_ids);
  const auto reference = f.monolithic_edge_logits();
  // Flip one byte deep inside the first reply (inside a layer frame): checksum fails, the edge
  // retries, the second reply is clean.
  const auto flip_first = [](int conn, size_t offset, std::string& chunk) {
    const size_t target = 5000;
    if (conn == 0 && offset <= target && target < offset + chunk.size())
      chunk[target - offset] ^= 1;
    return true;
  };
  {
    TcpRelay relay(port_of(url), flip_first);
    EXPECT_LE(rel(f.edge_logits(relay.url()), reference), 1e-5);
  }
  // Cut the first reply short: retried too.
  {
    TcpRelay relay(port_of(url), [](int conn, size_t offset, std::string&) {
      return conn != 0 || offset < 3000;
    });
    EXPECT_LE(rel(f.edge_logits(relay.url()), reference), 1e-5);
  }
  // Every reply corrupt: the request fails with a clear error, no wrong logits.
  {
    TcpRelay relay(port_of(url), [](int, size_t offset, std::string& chunk) {
      if (offset <= 5000 && 5000 < offset + chunk.size()) chunk[5000 - offset] ^= 1;
      return true;
    });
    try {
      f.edge_logits(relay.url());
      FAIL() << "corrupt KV was used";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
    }
  }
}

TEST(EdgeFetch, ClearErrorsForUnreachableUnknownAndWrongModel) {
  Fixture f;
  // Nothing listens on this port (the relay is gone): refused at once.
  int dead_port;
  {
    TcpRelay relay(1);
    dead_port = relay.port();
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    CloudKvFetch fetch("http://127.0.0.1:" + std::to_string(dead_port), "sys", *f.model,
                       f.fingerprint);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unreachable"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(12));

  test::Process cloud({"cloud", "--insecure-http", "--precision", "exact", "--model",
                       (kModels / "qwen2-bias").string(), "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  try {
    CloudKvFetch fetch(url, "nope", *f.model, f.fingerprint);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("404"), std::string::npos) << e.what();
  }
  register_prompt(url, "sys", {1, 2, 3});
  try {
    CloudKvFetch fetch(url, "sys", *f.model, f.fingerprint);  // the cloud runs qwen2-bias
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model mismatch"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ep
