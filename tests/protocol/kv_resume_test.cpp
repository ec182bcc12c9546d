// A KV stream cut mid-way resumes from its last whole layer (GET .../kv?from=N): cut at every
// layer boundary and inside every layer, in f16 and int4+zstd, the fetch completes with exactly
// the bytes of an uncut stream, and the second request asks only for the missing layers.
#include "model/fingerprint.h"
#include "model/model.h"
#include "protocol/kv_fetch.h"
#include "relay/tcp_relay.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace ep {
namespace {

int port_of(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

TEST(KvResume, ACutStreamResumesFromItsLastWholeLayer) {
  const auto model_path = test::default_model();
  test::Process cloud(
      {"cloud", "--insecure-http", "--model", model_path.string(), "--listen", "127.0.0.1:0"});
  const std::string cloud_url = test::start_cloud(cloud);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 200; ++i) tokens.push_back(5 + (i * 31) % 3000);
  httplib::Client c(cloud_url);
  auto put = c.Put("/v1/cloud-prompts/long", nlohmann::json{{"tokens", tokens}}.dump(),
                   "application/json");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 201) << put->body;
  const auto model = load_model(model_path);
  const std::string fp = model_fingerprint(*model->source);

  for (const std::string name : {"f16", "int4+zstd"}) {
    SCOPED_TRACE(name);
    CloudFetchOptions opt;
    opt.codec = kv_codec_from_name(name);
    std::string whole, reply;
    {
      TcpRelay relay(port_of(cloud_url));
      CloudKvFetch fetch(relay.url(), "long", *model, fp, opt);
      fetch.wait_complete();
      whole = fetch.stream_bytes();
      reply = relay.server_to_client();
    }
    // Where each layer's frame starts in the reply (HTTP headers and chunk sizes included).
    std::vector<size_t> cuts;
    for (size_t at = reply.find("EPKL"); at != std::string::npos; at = reply.find("EPKL", at + 1)) {
      cuts.push_back(at);       // the previous layers whole, this one not begun
      cuts.push_back(at + 25);  // inside this layer's frame
    }
    ASSERT_EQ(cuts.size(), 2u * 6);
    for (size_t i = 0; i < cuts.size(); ++i) {
      const size_t cut = cuts[i];
      SCOPED_TRACE("cut at byte " + std::to_string(cut));
      TcpRelay relay(port_of(cloud_url), [cut](int connection, size_t offset, std::string& chunk) {
        if (connection != 0) return true;
        if (offset >= cut) return false;
        if (offset + chunk.size() > cut) chunk.resize(cut - offset);
        return true;
      });
      CloudKvFetch fetch(relay.url(), "long", *model, fp, opt);
      fetch.wait_complete();
      const std::string got = fetch.stream_bytes();
      EXPECT_EQ(got.size(), whole.size());
      EXPECT_TRUE(got == whole);
      const std::string up = relay.client_to_server();
      const size_t second = up.find("GET ", 1);
      ASSERT_NE(second, std::string::npos) << "no second request";
      // From the first layer not whole (a cut inside layer 0 starts again from the header).
      const size_t layer = i / 2;
      EXPECT_EQ(up.find("from=" + std::to_string(layer) + " ", second) != std::string::npos,
                layer > 0);
      // The resumed reply carries only the missing layers: less than a whole second stream.
      EXPECT_LT(fetch.bytes_received(), 2 * whole.size());
    }
  }
  auto bad = c.Get("/v1/cloud-prompts/long/kv?from=7");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

}  // namespace
}  // namespace ep
