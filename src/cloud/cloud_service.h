// The cloud service: registers cloud prompts, prefills each once, and streams its KV layer by
// layer to any number of edges over HTTP (docs/cloud-api.md). The request paths are mapped in
// docs/architecture.md.
#pragma once

#include "cloud/prefill_queue.h"
#include "core/thread_pool.h"
#include "http/auth.h"
#include "http/limits.h"
#include "http/service.h"
#include "http/tls.h"
#include "model/model.h"
#include "protocol/kv_wire.h"
#include "runtime/serving_engine.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace ep {

class Tokenizer;

inline EngineOptions cloud_engine_options() {
  EngineOptions e;
  e.max_seqs = 64;
  e.cache_mode = CacheMode::Relay;
  e.kv_cache_bytes = 1ull << 30;
  return e;
}

struct CloudOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port
  std::filesystem::path cache_dir;  // empty: memory only
  std::string admin_token;          // without `auth`; empty: PUT/DELETE need no token
  // Tenants and scoped tokens (http/auth.h): every route but /health and /v1/models then needs
  // a token, and each tenant sees only its own prompts.
  std::shared_ptr<const http::AuthTable> auth;
  // Requests a second each tenant may send on average (0: no limit), and at once (0: the rate
  // rounded up); over it a request is answered 429 with Retry-After. /health is not counted.
  double tenant_rate = 0, tenant_burst = 0;
  KvDtype kv_dtype = KvDtype::F16;
  int threads = ThreadPool::default_threads();
  PrefillFn prefill;  // empty: the CPU transformer (e.g. a GPU engine's prefill otherwise)
  http::HttpLimits limits = http::cloud_http_limits();
  http::TlsServerOptions tls;        // HTTPS when set (and mutual TLS with a client CA)
  std::FILE* request_log = nullptr;  // one JSON line a request (http/request_log.h); null: none
  // The completions (/v1/completions, /v1/chat/completions): continuous batching, relay mode by
  // default (a request naming a cloud prompt attends its KV, held once).
  EngineOptions engine = cloud_engine_options();
  int engine_threads = ThreadPool::default_threads();  // the engine's own pool
  // What computes the engine's steps (a GPU: backend/cuda/serving_forward.h); empty: the CPU.
  std::function<std::unique_ptr<StepForward>()> step_forward;
};

class CloudService : public http::Service {
 public:
  // `tokenizer` may be null (then prompts must be given as token ids).
  CloudService(const Model& model, const Tokenizer* tokenizer, CloudOptions options);
  ~CloudService() override;  // stops serving first

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ep
