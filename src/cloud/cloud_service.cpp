#include "cloud/cloud_service.h"

#include "cloud/prompt_store.h"
#include "cloud/relay_segments.h"
#include "core/error.h"
#include "core/token_list.h"
#include "http/auth.h"
#include "http/error.h"
#include "http/json_ints.h"
#include "http/metrics.h"
#include "http/rate_limit.h"
#include "http/response.h"
#include "http/server.h"
#include "model/fingerprint.h"
#include "openai/completion_handler.h"
#include "openai/completion_response.h"
#include "openai/completion_tokens.h"
#include "openai/engine_metrics.h"
#include "runtime/transformer.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/prompt_parts.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>

namespace ep {
namespace {

using json = nlohmann::json;
using http::ErrorKind;

// The engine's prefix-cache salt of a tenant (0: no tenants).
uint64_t salt_of(const std::string& tenant) {
  if (tenant.empty()) return 0;
  const http::TokenHash h = http::hash_token("cache-salt:" + tenant);
  uint64_t salt = 0;
  for (int i = 0; i < 8; ++i) salt = salt << 8 | h[size_t(i)];
  return salt;
}

std::string etag_of(const CloudPrompt& p, const std::string& fingerprint) {
  std::string content = fingerprint + '\n' + p.chat_template + '\n';
  content.append(reinterpret_cast<const char*>(p.tokens.data()), p.tokens.size() * 4);
  const http::TokenHash h = http::hash_token(content);
  return fmt::format("\"v{}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}\"", p.version, h[0],
                     h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
}

json describe(const CloudPrompt& p, const std::string& fingerprint) {
  return {{"id", p.id},
          {"version", p.version},
          {"n_tokens", p.tokens.size()},
          {"fingerprint", fingerprint},
          {"chat_template", p.chat_template},
          {"state", !p.kv->error().empty() ? "failed"
                    : p.kv->complete()     ? "ready"
                                           : "computing"},
          {"kv_bytes", p.kv->stream_bytes()}};
}

}  // namespace

struct CloudService::Impl {
  const Model& model;
  const Tokenizer* tokenizer;
  CloudOptions opt;
  std::string fingerprint;
  ThreadPool pool;
  http::HttpServer& server;  // the service's; routes are registered here
  PromptStore store;

  std::optional<http::TokenHash> admin_token_hash;    // without an auth file
  std::unique_ptr<http::TenantRateLimit> rate_limit;  // with --tenant-rate

  http::MetricsRegistry metrics{"edgeprompt_cloud_"};
  http::Counter& bytes_served =
      metrics.counter("kv_bytes_served_total", "KV stream bytes sent to edges.");
  http::Counter& prefill_seconds =
      metrics.counter("prefill_seconds_total", "Time spent prefilling cloud prompts.");
  http::Counter& prefills_done =
      metrics.counter("prefills_total", "Cloud prompt prefills completed.");
  http::Gauge& active_streams = metrics.gauge("active_streams", "KV streams in progress.");
  http::Counter& streams_total = metrics.counter("streams_total", "KV streams started.");
  http::Counter& streams_cut = metrics.counter(
      "streams_cut_total", "KV streams that ended before their last byte (reader gone, stop).");
  http::Counter& errors = metrics.counter("errors_total", "Failed requests and prefills.");
  http::Counter& completions =
      metrics.counter("completion_requests_total", "Completion requests received.");

  http::MetricsRegistry engine_metrics{"edgeprompt_"};
  ChatTemplate local_template;  // the model's own (tokenizer/model_tokenizer.h)
  ThreadPool engine_pool;
  RelaySegments relay;
  ServingEngine engine;

  PrefillQueue prefills;  // last: its thread stops before anything it uses is destroyed

  Impl(const Model& m, const Tokenizer* t, CloudOptions o, http::HttpServer& s)
      : model(m),
        tokenizer(t),
        opt(std::move(o)),
        fingerprint(model_fingerprint(*m.source)),
        pool(opt.threads),
        server(s),
        store(opt.cache_dir, m, fingerprint, opt.kv_dtype),
        local_template(model_chat_template(*m.source, t)),
        engine_pool(opt.engine_threads),
        engine(m, t, engine_pool, with_engine_histograms(engine_metrics, opt.engine),
               opt.step_forward ? opt.step_forward() : nullptr),
        prefills(
            opt.prefill ? opt.prefill : cpu_prefill(),
            [this](const CloudPrompt& p, double secs) {
              prefill_seconds.add(secs);
              prefills_done.add();
              try {
                store.complete(p, secs);
              } catch (const std::exception& e) {
                // The KV is whole in memory and keeps being served; only the restart copy is
                // missing.
                errors.add();
                fmt::print(stderr,
                           "cloud: cannot keep prompt '{}' in the cache directory ({}); serving it "
                           "from memory until a restart\n",
                           p.id, e.what());
              }
            },
            [this] { errors.add(); }) {
    if (!opt.admin_token.empty()) admin_token_hash = http::hash_token(opt.admin_token);
    if (opt.tenant_rate > 0) {
      rate_limit = std::make_unique<http::TenantRateLimit>(
          opt.tenant_rate, opt.tenant_burst > 0 ? opt.tenant_burst : std::ceil(opt.tenant_rate));
    }
    register_engine_metrics(engine_metrics, engine);
    server.register_connection_metrics(metrics);
    metrics.gauge("prompts", "Cloud prompts registered.", [this] { return double(store.size()); });
    metrics.gauge("prompts_ready", "Cloud prompts whose KV is complete.",
                  [this] { return double(store.ready()); });
    routes();
    if (opt.request_log) {
      server.log_requests(opt.request_log, [this](const httplib::Request& q) {
        if (!opt.auth) return std::string();
        const auto who = opt.auth->authenticate(q.get_header_value("Authorization"));
        return who ? who->tenant : std::string();
      });
    }
  }

  PrefillFn cpu_prefill() {
    return [this](std::span<const int32_t> tokens, const LayerSink& layer) {
      Transformer tf(model, int64_t(tokens.size()), pool);
      tf.set_precision(opt.engine.precision);  // the prompts' KV in the completions' precision
      tf.set_layer_sink(layer);
      std::vector<float> logits;
      tf.forward(tokens, logits, false);
    };
  }

  // ---- requests -------------------------------------------------------------------------------

  // The tenant a request acts for, when its bearer token has one of the `allowed` roles: 401 for
  // a missing or unknown token, 403 for a role that may not do `what`. Without an auth file
  // there is one tenant (""), and only admin routes need a token (the admin token, if set).
  // Then the tenant's request rate (--tenant-rate): over it, 429 with the seconds to wait.
  std::string authorize(const httplib::Request& req, std::initializer_list<http::Role> allowed,
                        const char* what) const {
    std::string tenant = check_token(req, allowed, what);
    if (rate_limit) {
      if (const auto wait = rate_limit->acquire(tenant)) {
        throw http::HttpError(
            ErrorKind::TooManyRequests,
            fmt::format("over the request rate of {} a second{}: retry in {} s", opt.tenant_rate,
                        tenant.empty() ? "" : " of tenant '" + tenant + "'", *wait),
            *wait);
      }
    }
    return tenant;
  }

  std::string check_token(const httplib::Request& req, std::initializer_list<http::Role> allowed,
                          const char* what) const {
    const std::string header = req.get_header_value("Authorization");
    if (!opt.auth) {
      const bool admin_only = allowed.size() == 1 && *allowed.begin() == http::Role::Admin;
      if (!admin_only || admin_token_hash == std::nullopt) return "";
      if (header.rfind("Bearer ", 0) == 0 &&
          http::same_hash(http::hash_token(std::string_view(header).substr(7)),
                          *admin_token_hash)) {
        return "";
      }
      http::fail(ErrorKind::Unauthorized,
                 "missing or wrong admin token (Authorization: Bearer <token>)");
    }
    const auto who = opt.auth->authenticate(header);
    if (!who) {
      http::fail(ErrorKind::Unauthorized,
                 "missing or unknown bearer token (Authorization: Bearer <token>)");
    }
    for (const http::Role r : allowed) {
      if (r == who->role) return who->tenant;
    }
    http::fail(ErrorKind::Forbidden, "a token of role '{}' may not {}", http::role_name(who->role),
               what);
  }

  // The registered prompt's tokens: token ids as given, or the system part of its chat format.
  std::vector<int32_t> tokenize(const json& body, std::string& text, std::string& chat_template) {
    try {
      chat_template = body.value("chat_template", std::string("none"));
      if (chat_template.empty()) chat_template = "none";
      if (body.contains("tokens")) {
        std::vector<int32_t> ids = http::json_token_ids(body.at("tokens"), "tokens");
        check_token_ids(ids, model.hp.n_vocab);
        text = body.value("text", std::string());
        return ids;
      }
      if (!body.contains("text") || !body.at("text").is_string()) {
        http::fail(ErrorKind::InvalidRequest, "'text' (a string) is required");
      }
      text = body.at("text").get<std::string>();
      if (tokenizer == nullptr) {
        http::fail(ErrorKind::InvalidRequest,
                   "this model has no tokenizer: send \"tokens\" instead of \"text\"");
      }
      return cloud_prompt_tokens(*tokenizer, chat_template_by_name(chat_template, local_template),
                                 text);
    } catch (const http::HttpError&) {
      throw;
    } catch (const std::exception& e) {
      http::fail(ErrorKind::InvalidRequest, "{}", e.what());
    }
  }

  void put_prompt(const httplib::Request& req, httplib::Response& res) {
    const std::string tenant = authorize(req, {http::Role::Admin}, "register cloud prompts");
    json body;
    try {
      body = json::parse(req.body);
    } catch (const std::exception& e) {
      http::fail(ErrorKind::InvalidRequest, "malformed JSON: {}", e.what());
    }
    if (!body.is_object()) {
      http::fail(ErrorKind::InvalidRequest, "malformed JSON: body must be a JSON object");
    }
    std::string text, chat_template;
    std::vector<int32_t> tokens = tokenize(body, text, chat_template);
    if (tokens.empty()) http::fail(ErrorKind::InvalidRequest, "the cloud prompt is empty");
    if (int64_t(tokens.size()) > model.hp.n_ctx_train) {
      http::fail(ErrorKind::InvalidRequest, "cloud prompt of {} tokens exceeds the context of {}",
                 tokens.size(), model.hp.n_ctx_train);
    }
    const auto reg = store.put(tenant, req.matches[1], std::move(text), std::move(chat_template),
                               std::move(tokens));
    if (reg.created) {
      relay.forget(tenant, reg.prompt.id);
      prefills.push(reg.prompt);
    }
    http::send_json(res, describe(reg.prompt, fingerprint), reg.created ? 201 : 200);
  }

  // Another tenant's prompt is as unknown as one never registered (404, the same lookup).
  CloudPrompt find(const std::string& tenant, const std::string& id) const {
    auto p = store.find(tenant, id);
    if (!p) http::fail(ErrorKind::NotFound, "unknown cloud prompt '{}'", id);
    return *p;
  }

  void stream_kv(const httplib::Request& req, httplib::Response& res) {
    const std::string tenant =
        authorize(req, {http::Role::Admin, http::Role::Edge}, "fetch cloud prompts' KV");
    const CloudPrompt p = find(tenant, req.matches[1]);
    if (req.has_param("version") && req.get_param_value("version") != std::to_string(p.version)) {
      http::fail(ErrorKind::NotFound, "cloud prompt '{}' has version {}, not {}", p.id, p.version,
                 req.get_param_value("version"));
    }
    // ?codec=NAME: the frames transcoded from the kept form (docs/kv-wire-format.md).
    KvStreamHeader out = p.kv->header();
    if (req.has_param("codec")) {
      const auto codec = kv_codec_from_name(req.get_param_value("codec"));
      if (!codec) {
        http::fail(ErrorKind::InvalidRequest, "codec '{}' is not one of {}",
                   req.get_param_value("codec"), kKvCodecNames);
      }
      out.set_codec(*codec);
    }
    struct State {
      std::shared_ptr<PromptKv> kv;
      KvStreamHeader out;
      uint32_t next = 0;
      bool header_sent = false;
    };
    auto st = std::make_shared<State>(State{p.kv, std::move(out)});
    // ?from=N: a stream resumed after its first N layers arrived (the header, then N onwards).
    if (req.has_param("from")) {
      const std::string from = req.get_param_value("from");
      uint32_t n = 0;
      const auto [end, ec] = std::from_chars(from.data(), from.data() + from.size(), n);
      if (ec != std::errc() || end != from.data() + from.size() || n > st->out.n_layers) {
        http::fail(ErrorKind::InvalidRequest, "from '{}' is not a layer in 0..{}", from,
                   st->out.n_layers);
      }
      st->next = n;
    }
    active_streams.add(1);
    streams_total.add();
    res.set_header("X-EdgePrompt-Fingerprint", fingerprint);
    res.set_header("X-EdgePrompt-Version", std::to_string(p.version));
    res.set_header("X-EdgePrompt-KV-Codec", kv_codec_name(st->out.codec()));
    res.set_chunked_content_provider(
        "application/x-edgeprompt-kv",
        [this, st](size_t, httplib::DataSink& sink) {
          const auto write = [&](const std::string& b) {
            bytes_served.add(double(b.size()));
            return sink.write(b.data(), b.size());
          };
          if (!st->header_sent) {
            st->header_sent = true;
            return write(st->out.codec() == st->kv->header().codec() ? st->kv->header_bytes()
                                                                     : encode_kv_header(st->out));
          }
          const KvStreamHeader& h = st->kv->header();
          if (st->next < h.n_layers) {
            // Wait for the layer; the prefill may still be computing it.
            try {
              for (;;) {
                if (auto frame = st->kv->wait_layer(st->next, std::chrono::milliseconds(500))) {
                  ++st->next;
                  return write(transcode_kv_layer(st->kv->header(), st->out, *frame));
                }
                if (!sink.is_writable()) break;
              }
            } catch (const LayerStreamError&) {
            }
            errors.add();
            return false;  // drop the connection: the edge sees a truncated stream
          }
          write(st->kv->end_bytes());
          sink.done();
          return true;
        },
        [this](bool complete) {
          active_streams.add(-1);
          if (!complete) streams_cut.add();
        });
  }

  // A completion on the cloud: the whole prompt is the client's (the baselines, and devices whose
  // policy allows sending it). With "cloud_prompt" its system part is that registered prompt,
  // as on an edge: attended as a shared segment in relay mode, else prefilled with the request.
  json complete(CompletionRequest& req, const std::string& id,
                const std::function<bool(const std::string&)>& on_text, const std::string& tenant) {
    const auto t_request = std::chrono::steady_clock::now();
    std::optional<CloudPrompt> prompt;
    if (req.cloud_prompt) prompt = find(tenant, *req.cloud_prompt);
    // Prefix-cache blocks are shared only within a tenant: no tenant can time another's prompts.
    req.gen.cache_salt = salt_of(tenant);
    if (!tokenizer && (req.chat || !req.prompt_ids)) {
      http::fail(ErrorKind::InvalidRequest,
                 "this model has no tokenizer: send \"prompt\" as token ids");
    }
    std::vector<int32_t> own =
        tokenizer ? completion_tokens(req, *tokenizer, model.hp.n_vocab, local_template,
                                      prompt ? std::optional(prompt->chat_template) : std::nullopt)
                  : *req.prompt_ids;
    if (!tokenizer) check_token_ids(own, model.hp.n_vocab);
    if (own.empty()) http::fail(ErrorKind::InvalidRequest, "the prompt is empty");
    SharedKvUsage shared;
    req.gen.prefix = nullptr;
    req.gen.tokens = own;
    if (prompt) {
      shared.n_tokens = prompt->tokens.size();
      if (engine.options().cache_mode == CacheMode::Relay) {
        req.gen.prefix = relay.get(*prompt, opt.limits.read_timeout * 12);
        shared.source = "cloud-relay";
      } else {
        req.gen.tokens = prompt->tokens;
        req.gen.tokens.insert(req.gen.tokens.end(), own.begin(), own.end());
        shared.source = "cloud-prefill";
      }
    }
    const double setup_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request).count();
    GenerationResult r;
    try {
      r = engine.generate(req.gen, on_text);
    } catch (const EngineBusy& e) {
      http::fail(ErrorKind::TooManyRequests, "{}", e.what());
    } catch (const LayerStreamError& e) {
      http::fail(ErrorKind::Internal, "{}", e.what());
    } catch (const Error& e) {
      http::fail(ErrorKind::InvalidRequest, "{}", e.what());
    }
    req.gen.tokens = own;  // usage counts the request's own tokens apart from the cloud prompt's
    json out = completion_body(req, id, r, completion_usage(r, req, shared, setup_s));
    if (prompt) out["cloud_prompt"] = {{"id", prompt->id}, {"version", prompt->version}};
    return out;
  }

  void delete_prompt(const httplib::Request& req, httplib::Response& res) {
    const std::string tenant = authorize(req, {http::Role::Admin}, "delete cloud prompts");
    const std::string id = req.matches[1];
    if (!store.erase(tenant, id)) http::fail(ErrorKind::NotFound, "unknown cloud prompt '{}'", id);
    relay.forget(tenant, id);
    http::send_json(res, {{"id", id}, {"deleted", true}});
  }

  // ---- routes ---------------------------------------------------------------------------------

  void routes() {
    httplib::Server& s = server.routes();
    const std::string prompt = fmt::format("/v1/cloud-prompts/({})", kPromptIdPattern);
    // Errors are counted where they are answered: every request that ends in 4xx/5xx.
    s.set_post_routing_handler([this](const httplib::Request&, httplib::Response& r) {
      if (r.status >= 400) errors.add();
    });
    s.Put(prompt, [this](const auto& q, auto& r) { put_prompt(q, r); });
    s.Get(prompt + "/kv", [this](const auto& q, auto& r) { stream_kv(q, r); });
    s.Get(prompt, [this](const auto& q, auto& r) {
      const std::string tenant =
          authorize(q, {http::Role::Admin, http::Role::Edge}, "read cloud prompts");
      const CloudPrompt p = find(tenant, q.matches[1]);
      // The ETag names the version and the content (model, template, tokens): an edge
      // revalidating with If-None-Match gets a bodiless 304 while its copy is current.
      const std::string etag = etag_of(p, fingerprint);
      r.set_header("ETag", etag);
      if (q.get_header_value("If-None-Match") == etag) {
        r.status = 304;
        return;
      }
      http::send_json(r, describe(p, fingerprint));
    });
    s.Delete(prompt, [this](const auto& q, auto& r) { delete_prompt(q, r); });
    s.Get("/v1/cloud-prompts", [this](const httplib::Request& q, httplib::Response& r) {
      const std::string tenant =
          authorize(q, {http::Role::Admin, http::Role::Edge}, "list cloud prompts");
      json list = json::array();
      for (const CloudPrompt& p : store.list(tenant)) list.push_back(describe(p, fingerprint));
      http::send_json(r, {{"object", "list"}, {"data", list}});
    });
    // The completions, with the caller's tenant: registered before add_completion_routes' own
    // handlers of these paths, which therefore never run here (it still serves /v1/models).
    for (const bool chat : {true, false}) {
      s.Post(chat ? "/v1/chat/completions" : "/v1/completions",
             [this, chat](const httplib::Request& q, httplib::Response& r) {
               completions.add();
               const std::string tenant =
                   authorize(q, {http::Role::Admin, http::Role::Edge, http::Role::Client},
                             "request completions");
               serve_completion(
                   q, r, chat,
                   [this, tenant](CompletionRequest& req, const std::string& id,
                                  const std::function<bool(const std::string&)>& on_text) {
                     return complete(req, id, on_text, tenant);
                   },
                   errors);
             });
    }
    add_completion_routes(
        s,
        [](CompletionRequest&, const std::string&, const std::function<bool(const std::string&)>&)
            -> json { http::fail(ErrorKind::Internal, "unreachable completion route"); },
        completions, errors, fingerprint);
    s.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
      http::send_json(r,
                      {{"status", "ok"}, {"fingerprint", fingerprint}, {"model", model.hp.arch}});
    });
    s.Get("/metrics", [this](const httplib::Request& q, httplib::Response& r) {
      authorize(q, {http::Role::Admin}, "read the metrics");
      r.set_content(metrics.render() + engine_metrics.render(),
                    http::MetricsRegistry::kContentType);
    });
  }
};

CloudService::CloudService(const Model& model, const Tokenizer* tokenizer, CloudOptions options)
    : http::Service(options.host, options.port, options.limits, options.tls),
      impl_(std::make_unique<Impl>(model, tokenizer, std::move(options), server())) {}

CloudService::~CloudService() {
  stop();
}

}  // namespace ep
