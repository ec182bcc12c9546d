#include "edge/edge_service.h"

#include "core/error.h"
#include "core/token_list.h"
#include "edge/cloud_kv_source.h"
#include "edge/completion_request.h"
#include "edge/completion_response.h"
#include "edge/edge_kv_cache.h"
#include "http/error.h"
#include "http/metrics.h"
#include "http/response.h"
#include "http/server.h"
#include "model/fingerprint.h"
#include "runtime/generate.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/prompt_parts.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <mutex>

namespace ep {

using json = nlohmann::json;
using http::ErrorKind;

struct EdgeService::Impl {
  const Model& model;
  const Tokenizer& tokenizer;
  EdgeOptions opt;
  std::string fingerprint;
  ChatFormat local_format;
  ThreadPool pool;
  EdgeKvCache cache;
  CloudKvSource cloud;
  http::HttpServer& server;  // the service's; routes are registered here
  std::mutex compute_mutex;  // one generation at a time: the device's cores are all in use

  http::MetricsRegistry metrics{"edgeprompt_edge_"};
  http::Counter& requests = metrics.counter("requests_total", "Completion requests received.");
  http::Counter& errors = metrics.counter("errors_total", "Requests that ended in an error.");
  http::Counter& prompt_tokens =
      metrics.counter("prompt_tokens_total", "Prompt tokens, cloud and private.");
  http::Counter& completion_tokens =
      metrics.counter("completion_tokens_total", "Tokens generated.");
  http::Counter& kv_bytes_received =
      metrics.counter("kv_bytes_received_total", "KV stream bytes received from the cloud.");
  http::Counter& cache_hits =
      metrics.counter("kv_cache_hits_total", "Cloud prompts served from the edge's KV cache.");
  http::Counter& cache_misses =
      metrics.counter("kv_cache_misses_total", "Cloud prompts whose KV was streamed.");

  Impl(const Model& m, const Tokenizer& t, EdgeOptions o, http::HttpServer& s)
      : model(m),
        tokenizer(t),
        opt(std::move(o)),
        fingerprint(model_fingerprint(*m.source)),
        local_format(detect_chat_format(chat_template_text(*m.source)).value_or(ChatFormat::none)),
        pool(opt.threads),
        cache(opt.kv_cache_dir, opt.kv_cache_bytes, m, fingerprint),
        cloud(opt.cloud_url, m, fingerprint, cache),
        server(s) {
    metrics.gauge("kv_cache_bytes", "Bytes of KV in the edge's cache.",
                  [this] { return double(cache.bytes()); });
    metrics.gauge("kv_cache_entries", "Cloud prompts in the edge's KV cache.",
                  [this] { return double(cache.size()); });
    routes();
  }

  // The private tokens: the edge's part of the conversation, tokenised here and never sent.
  std::vector<int32_t> private_tokens(const CompletionRequest& req, const CloudKv* kv) {
    try {
      if (!req.chat) {
        if (req.prompt_ids) {
          check_token_ids(*req.prompt_ids, model.hp.n_vocab);
          return *req.prompt_ids;
        }
        return tokenizer.encode(req.prompt, kv == nullptr && tokenizer.add_bos_default(),
                                kv == nullptr);
      }
      if (kv) {
        return private_prompt_tokens(tokenizer, chat_format_from_name(kv->chat_template),
                                     req.messages);
      }
      return local_chat_tokens(tokenizer, local_format, req.system, req.messages);
    } catch (const Error& e) {
      http::fail(ErrorKind::InvalidRequest, "{}", e.what());
    }
  }

  // Runs a request; `on_text` streams pieces. Returns the whole answer (usage included).
  json run(CompletionRequest& req, const std::string& id,
           const std::function<bool(const std::string&)>& on_text) {
    const auto t_request = std::chrono::steady_clock::now();
    std::optional<CloudKv> kv;
    if (req.cloud_prompt) {
      kv = cloud.resolve(*req.cloud_prompt);
      (kv->fetch ? cache_misses : cache_hits).add();
    }
    req.gen.tokens = private_tokens(req, kv ? &*kv : nullptr);
    if (req.gen.tokens.empty()) http::fail(ErrorKind::InvalidRequest, "the prompt is empty");
    req.gen.prefix = kv ? kv->segment : nullptr;
    GenerationResult r;
    double setup_s = 0;
    {
      std::lock_guard lock(compute_mutex);
      setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request).count();
      try {
        r = generate(model, &tokenizer, pool, req.gen, on_text);
      } catch (const LayerStreamError& e) {
        http::fail(ErrorKind::Upstream, "{}", e.what());  // the cloud's KV stream failed
      } catch (const Error& e) {
        http::fail(ErrorKind::InvalidRequest, "{}", e.what());
      }
    }
    if (kv && kv->fetch) {
      // Keep the streamed KV for the next request (complete by now: the prompt pass used it all).
      kv_bytes_received.add(double(kv->fetch->bytes_received()));
      cloud.keep(*kv);
    }
    prompt_tokens.add(double(req.gen.tokens.size() + (kv ? kv->n_tokens : 0)));
    completion_tokens.add(double(r.ids.size()));
    json out = completion_body(req, id, r,
                               completion_usage(r, req, kv ? &*kv : nullptr, setup_s, t_request));
    if (kv) out["cloud_prompt"] = {{"id", kv->id}, {"version", kv->version}};
    return out;
  }

  void handle(const httplib::Request& q, httplib::Response& res, bool chat) {
    requests.add();
    CompletionRequest req = parse_completion_request(q.body, chat);
    const std::string id = completion_id();
    if (!req.stream) {
      http::send_json(res, run(req, id, [](const std::string&) { return true; }));
      return;
    }
    // Server-sent events: one chunk per piece of text, then the final chunk with usage, then
    // [DONE]. An error after the stream began is sent as an error event.
    auto shared = std::make_shared<CompletionRequest>(std::move(req));
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, shared, id](size_t, httplib::DataSink& sink) {
          const auto event = [&](const json& j) {
            const std::string s = "data: " + j.dump() + "\n\n";
            return sink.write(s.data(), s.size());
          };
          try {
            json answer = run(*shared, id, [&](const std::string& text) {
              return event(completion_chunk(*shared, id, text, std::nullopt));
            });
            json last = completion_chunk(*shared, id, "",
                                         answer["choices"][0]["finish_reason"].get<std::string>());
            last["usage"] = answer["usage"];
            event(last);
          } catch (const http::HttpError& e) {
            errors.add();
            event(http::error_body(e.kind(), e.what()));
          } catch (const std::exception& e) {
            errors.add();
            event(http::error_body(ErrorKind::Internal, e.what()));
          }
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        });
  }

  void routes() {
    httplib::Server& s = server.routes();
    s.set_post_routing_handler([this](const httplib::Request&, httplib::Response& r) {
      if (r.status >= 400) errors.add();
    });
    s.Post("/v1/chat/completions", [this](const auto& q, auto& r) { handle(q, r, true); });
    s.Post("/v1/completions", [this](const auto& q, auto& r) { handle(q, r, false); });
    s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& r) {
      http::send_json(r, {{"object", "list"},
                          {"data",
                           {{{"id", "edgeprompt"},
                             {"object", "model"},
                             {"owned_by", "local"},
                             {"fingerprint", fingerprint}}}}});
    });
    s.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
      http::send_json(r,
                      {{"status", "ok"}, {"fingerprint", fingerprint}, {"cloud", opt.cloud_url}});
    });
    s.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(metrics.render(), http::MetricsRegistry::kContentType);
    });
  }
};

EdgeService::EdgeService(const Model& model, const Tokenizer& tokenizer, EdgeOptions options)
    : http::Service(options.host, options.port, options.limits),
      impl_(std::make_unique<Impl>(model, tokenizer, std::move(options), server())) {}

EdgeService::~EdgeService() {
  stop();
}

}  // namespace ep
