#include "edge/edge_service.h"

#include "core/error.h"
#include "core/token_list.h"
#include "edge/cloud_kv_source.h"
#include "edge/edge_kv_cache.h"
#include "edge/kv_planner.h"
#include "http/error.h"
#include "http/metrics.h"
#include "http/response.h"
#include "http/server.h"
#include "model/fingerprint.h"
#include "openai/completion_handler.h"
#include "openai/completion_request.h"
#include "openai/completion_response.h"
#include "openai/completion_tokens.h"
#include "openai/engine_metrics.h"
#include "runtime/serving_engine.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <vector>

namespace ep {

using json = nlohmann::json;
using http::ErrorKind;

struct EdgeService::Impl {
  const Model& model;
  const Tokenizer& tokenizer;
  EdgeOptions opt;
  std::string fingerprint;
  ChatTemplate local_template;  // the model's own (tokenizer/model_tokenizer.h)
  ThreadPool pool;
  EdgeKvCache cache;
  CloudKvSource cloud;
  http::HttpServer& server;  // the service's; routes are registered here
  http::MetricsRegistry engine_metrics{"edgeprompt_"};
  ServingEngine engine;  // the device's users, batched (max_seqs 1: one at a time)

  http::MetricsRegistry metrics{"edgeprompt_edge_"};
  http::Counter& requests = metrics.counter("requests_total", "Completion requests received.");
  http::Counter& errors = metrics.counter("errors_total", "Requests that ended in an error.");
  http::Counter& prompt_tokens =
      metrics.counter("prompt_tokens_total", "Prompt tokens, cloud and private.");
  http::Counter& completion_tokens_total =
      metrics.counter("completion_tokens_total", "Tokens generated.");
  http::Counter& kv_bytes_received =
      metrics.counter("kv_bytes_received_total", "KV stream bytes received from the cloud.");
  http::Counter& cache_hits =
      metrics.counter("kv_cache_hits_total", "Cloud prompts served from the edge's KV cache.");
  http::Counter& cache_misses =
      metrics.counter("kv_cache_misses_total", "Cloud prompts whose KV was streamed.");
  std::unique_ptr<KvPlanner> planner;  // with opt.kv_plan
  std::map<KvPlan, http::Counter*> plans;
  http::Gauge& ttft_predicted = metrics.gauge(
      "ttft_predicted_seconds", "The planner's eq. 7 time to first token of the last request.");
  http::Gauge& ttft_measured = metrics.gauge(
      "ttft_measured_seconds", "Time to first token of the last request the planner chose for.");

  Impl(const Model& m, const Tokenizer& t, EdgeOptions o, http::HttpServer& s)
      : model(m),
        tokenizer(t),
        opt(std::move(o)),
        fingerprint(model_fingerprint(*m.source)),
        local_template(model_chat_template(*m.source, &t)),
        pool(opt.threads),
        cache(opt.kv_cache_dir, opt.kv_cache_bytes, m, fingerprint),
        cloud(opt.cloud, m, fingerprint, cache, opt.revalidate_s),
        server(s),
        engine(m, &t, pool, with_engine_histograms(engine_metrics, opt.engine)) {
    register_engine_metrics(engine_metrics, engine);
    server.register_connection_metrics(metrics);
    metrics.gauge("kv_cache_bytes", "Bytes of KV in the edge's cache.",
                  [this] { return double(cache.bytes()); });
    metrics.gauge("kv_cache_entries", "Cloud prompts in the edge's KV cache.",
                  [this] { return double(cache.size()); });
    if (!opt.kv_plan.empty()) make_planner();
    routes();
    if (opt.request_log) server.log_requests(opt.request_log, nullptr);  // one user, no tenants
  }

  void make_planner() {
    KvPlanOptions po;
    if (opt.kv_plan != "auto") {
      po.forced = kv_plan_from_name(opt.kv_plan);
      if (!po.forced) fail("--kv-plan: '{}' is not auto, f16, int8, int4 or local", opt.kv_plan);
    }
    planner = std::make_unique<KvPlanner>(
        po, calibrate_edge_token_layer_s(model, pool, opt.engine.precision));
    for (const KvPlan p : kKvPlans) {
      plans[p] = &metrics.counter(
          fmt::format("kv_plan_{}_total", kv_plan_name(p)),
          fmt::format("Cloud prompts the planner chose '{}' for.", kv_plan_name(p)));
    }
  }

  // The fetch of a cloud prompt the edge does not hold, as the planner (if any) chooses it.
  CloudFetchOptions plan_fetch(const CompletionRequest& req, const CloudPromptInfo& info,
                               std::optional<KvPlanChoice>& choice) {
    CloudFetchOptions f;
    f.codec = opt.kv_codec;
    if (!planner) return f;
    const size_t n_edge =
        completion_tokens(req, tokenizer, model.hp.n_vocab, local_template, info.chat_template)
            .size();
    choice = planner->choose({info.n_tokens, n_edge, uint64_t(model.hp.n_layer),
                              uint64_t(model.hp.n_head_kv), uint64_t(model.hp.head_dim)});
    plans[choice->plan]->add();
    ttft_predicted.set(choice->predicted_s);
    if (choice->plan == KvPlan::Local) {
      f.header_only = true;
    } else {
      KvCodec c = kv_plan_codec(choice->plan);
      if (opt.kv_codec) c.compression = opt.kv_codec->compression;  // --kv-codec ...+zstd
      f.codec = c;
    }
    return f;
  }

  // Runs a request; `on_text` streams pieces. Returns the whole answer (usage included). The
  // private tokens are computed here and never sent.
  json run(CompletionRequest& req, const std::string& id,
           const std::function<bool(const std::string&)>& on_text) {
    const auto t_request = std::chrono::steady_clock::now();
    std::optional<CloudKv> kv;
    std::optional<KvPlanChoice> choice;
    if (req.cloud_prompt) {
      kv = cloud.resolve(*req.cloud_prompt, [&](const CloudPromptInfo& info) {
        return plan_fetch(req, info, choice);
      });
      (kv->source == "edge-cache" ? cache_hits : cache_misses).add();
    }
    req.gen.tokens = completion_tokens(req, tokenizer, model.hp.n_vocab, local_template,
                                       kv ? std::optional(kv->chat_template) : std::nullopt);
    if (req.gen.tokens.empty()) http::fail(ErrorKind::InvalidRequest, "the prompt is empty");
    const std::vector<int32_t> own = req.gen.tokens;
    req.gen.prefix = kv ? kv->segment : nullptr;
    if (kv && kv->source == "local") {  // the cloud prompt's tokens computed here, then ours
      req.gen.tokens.insert(req.gen.tokens.begin(), kv->tokens.begin(), kv->tokens.end());
    }
    const double setup_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request).count();
    GenerationResult r;
    try {
      r = engine.generate(req.gen, on_text);
    } catch (const LayerStreamError& e) {
      http::fail(ErrorKind::Upstream, "{}", e.what());  // the cloud's KV stream failed
    } catch (const EngineBusy& e) {
      http::fail(ErrorKind::TooManyRequests, "{}", e.what());
    } catch (const Error& e) {
      http::fail(ErrorKind::InvalidRequest, "{}", e.what());
    }
    req.gen.tokens = own;  // usage counts the private tokens apart from the cloud prompt's
    SharedKvUsage shared;
    if (kv) {
      shared.n_tokens = kv->n_tokens;
      shared.source = kv->source;
    }
    if (kv && kv->fetch) {
      // Keep the streamed KV for the next request (complete by now: the prompt pass used it all).
      shared.bytes_received = kv->fetch->bytes_received();
      const double offset = std::chrono::duration<double>(kv->fetch_started - t_request).count();
      for (const double a : kv->fetch->layer_arrival_s())
        shared.layer_arrival_s.push_back(a + offset);
      kv_bytes_received.add(double(shared.bytes_received));
      cloud.keep(*kv);
    }
    prompt_tokens.add(double(req.gen.tokens.size() + shared.n_tokens));
    completion_tokens_total.add(double(r.ids.size()));
    json out = completion_body(req, id, r, completion_usage(r, req, shared, setup_s));
    if (kv) out["cloud_prompt"] = {{"id", kv->id}, {"version", kv->version}};
    if (kv && kv->fetch) out["usage"]["timings"]["kv_codec"] = kv->codec;
    if (choice) record_plan(*kv, *choice, out["usage"]["timings"]);
    return out;
  }

  // The plan, its prediction and what was measured, into the answer's timings and the planner.
  void record_plan(const CloudKv& kv, const KvPlanChoice& choice, json& timings) {
    const double ttft_ms = timings.value("ttft_ms", 0.0);
    timings["kv_plan"] = kv_plan_name(choice.plan);
    timings["ttft_predicted_ms"] = choice.predicted_s * 1e3;
    ttft_measured.set(ttft_ms / 1e3);
    if (!kv.fetch || kv.joined) return;  // a joined stream was measured by its first request
    const auto arrival = kv.fetch->layer_arrival_s();
    if (arrival.empty()) return;
    const auto [first, last] = std::minmax_element(arrival.begin(), arrival.end());
    planner->observe_stream(kv.fetch->bytes_received(), *first, *last);
  }

  void routes() {
    httplib::Server& s = server.routes();
    s.set_post_routing_handler([this](const httplib::Request&, httplib::Response& r) {
      if (r.status >= 400) errors.add();
    });
    add_completion_routes(
        s,
        [this](CompletionRequest& req, const std::string& id,
               const std::function<bool(const std::string&)>& on_text) {
          return run(req, id, on_text);
        },
        requests, errors, fingerprint);
    s.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
      http::send_json(
          r, {{"status", "ok"}, {"fingerprint", fingerprint}, {"cloud", opt.cloud.base_url}});
    });
    s.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(metrics.render() + engine_metrics.render(),
                    http::MetricsRegistry::kContentType);
    });
  }
};

EdgeService::EdgeService(const Model& model, const Tokenizer& tokenizer, EdgeOptions options)
    : http::Service(options.host, options.port, options.limits, options.tls),
      impl_(std::make_unique<Impl>(model, tokenizer, std::move(options), server())) {}

EdgeService::~EdgeService() {
  stop();
}

}  // namespace ep
