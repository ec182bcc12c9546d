// The edge service: an OpenAI-compatible HTTP API on the user's device. Requests naming a
// "cloud_prompt" run against that prompt's KV (from the edge's own cache, or streamed from the
// cloud layer by layer while the private tokens are being computed); the private messages never
// leave this process. Without "cloud_prompt" everything runs locally (docs/edge-api.md). The
// request path is mapped in docs/architecture.md.
#pragma once

#include "core/thread_pool.h"
#include "http/limits.h"
#include "http/service.h"
#include "http/tls.h"
#include "model/model.h"
#include "protocol/cloud_client.h"
#include "protocol/kv_codec.h"
#include "runtime/serving_engine.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace ep {

class Tokenizer;

// An edge's engine by default: one request at a time (its cores are all in use), the shared part
// being the cloud prompt's KV it received or cached.
inline EngineOptions edge_engine_options() {
  EngineOptions e;
  e.max_seqs = 1;
  return e;
}

struct EdgeOptions {
  // The cloud (base_url e.g. https://10.0.0.2:8080; empty: local requests only), how its
  // certificate is verified and the token the edge's own calls carry.
  CloudConnection cloud;
  std::string host = "127.0.0.1";
  int port = 8081;
  std::filesystem::path kv_cache_dir;  // empty: memory only
  uint64_t kv_cache_bytes = 1ull << 30;
  int threads = ThreadPool::default_threads();
  http::HttpLimits limits = http::edge_http_limits();
  http::TlsServerOptions tls;        // the edge's own API over HTTPS when set
  std::FILE* request_log = nullptr;  // one JSON line a request (http/request_log.h); null: none
  // Seconds a cloud prompt's description is trusted before it is revalidated (a conditional
  // GET); within them a request for a cached prompt sends nothing to the cloud.
  double revalidate_s = 2;
  // The codec a cloud prompt's KV is asked for when it is streamed (docs/kv-wire-format.md);
  // none: the form the cloud keeps (f16 by default).
  std::optional<KvCodec> kv_codec;
  // How a cloud prompt's KV that the edge does not hold reaches it (edge/kv_planner.h): empty
  // as asked by kv_codec; "auto": eq. 7's fastest with measured inputs; "f16", "int8", "int4"
  // (streamed in that codec) or "local" (recomputed here from the prompt's tokens).
  std::string kv_plan;
  // The device's users are batched by the serving engine; max_seqs 1 runs them one at a time.
  EngineOptions engine = edge_engine_options();
};

class EdgeService : public http::Service {
 public:
  EdgeService(const Model& model, const Tokenizer& tokenizer, EdgeOptions options);
  ~EdgeService() override;  // stops serving first

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep
