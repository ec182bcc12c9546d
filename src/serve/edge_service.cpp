#include "serve/edge_service.h"

#include "core/error.h"
#include "model/fingerprint.h"
#include "net/cloud_client.h"
#include "net/http_bind.h"
#include "serve/edge_kv_cache.h"
#include "serve/generator.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>

namespace ep {
namespace {

using json = nlohmann::json;

// An error that maps to an HTTP status.
struct HttpError : Error {
  HttpError(int s, const std::string& m) : Error(m), status(s) {}
  int status;
};

[[noreturn]] void http_fail(int status, const std::string& message) {
  throw HttpError(status, message);
}

json error_body(int status, const std::string& message) {
  const char* type = status == 400   ? "invalid_request_error"
                     : status == 404 ? "not_found_error"
                     : status == 409 ? "model_mismatch"
                     : status == 502 ? "cloud_error"
                                     : "server_error";
  return {{"error", {{"message", message}, {"type", type}, {"code", status}}}};
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(error_body(status, message).dump() + "\n", "application/json");
}

std::string request_id() {
  std::random_device rd;
  return fmt::format("cmpl-{:08x}{:08x}", rd(), rd());
}

// Where a request's cloud-prompt KV came from.
struct CloudKv {
  std::shared_ptr<const KvSegment> segment;
  std::unique_ptr<CloudKvFetch> fetch;  // set when streamed for this request
  std::string id, chat_template, source;
  uint64_t version = 0;
  size_t n_tokens = 0;
  std::chrono::steady_clock::time_point fetch_started;  // layer arrivals count from here
};

// The parsed request: what to generate and how.
struct Job {
  bool chat = true;
  bool stream = false;
  GenerationRequest gen;
  std::optional<std::string> cloud_prompt;
  std::vector<ChatMessage> messages;
  std::string system;
  std::string prompt;  // /v1/completions
  std::optional<std::vector<int32_t>> prompt_ids;
  std::string model_name = "edgeprompt";
};

}  // namespace

struct EdgeService::Impl {
  const Model& model;
  const Tokenizer& tokenizer;
  EdgeOptions opt;
  std::string fingerprint;
  ChatFormat local_format;
  ThreadPool pool;
  EdgeKvCache cache;
  httplib::Server server;
  std::mutex compute_mutex;  // one generation at a time: the device's cores are all in use

  std::atomic<uint64_t> requests{0}, errors{0}, prompt_tokens{0}, completion_tokens{0},
      kv_bytes_streamed{0}, cache_hits{0}, cache_misses{0};

  Impl(const Model& m, const Tokenizer& t, EdgeOptions o)
      : model(m),
        tokenizer(t),
        opt(std::move(o)),
        fingerprint(model_fingerprint(*m.source)),
        local_format(detect_chat_format(chat_template_text(*m.source)).value_or(ChatFormat::none)),
        pool(opt.threads),
        cache(opt.kv_cache_dir, opt.kv_cache_bytes, m, fingerprint) {
    routes();
  }

  // ---- request parsing ------------------------------------------------------------------------

  Job parse(const std::string& body, bool chat) {
    json j;
    try {
      j = json::parse(body);
    } catch (const std::exception& e) {
      http_fail(400, fmt::format("malformed JSON: {}", e.what()));
    }
    if (!j.is_object()) http_fail(400, "the request body must be a JSON object");
    Job job;
    job.chat = chat;
    try {
      job.stream = j.value("stream", false);
      job.model_name = j.value("model", std::string("edgeprompt"));
      if (j.contains("cloud_prompt") && !j["cloud_prompt"].is_null()) {
        job.cloud_prompt = j["cloud_prompt"].get<std::string>();
      }
      job.gen.max_tokens = j.value("max_tokens", j.value("max_completion_tokens", 128));
      SamplerParams& s = job.gen.sampling;
      s.temperature = j.value("temperature", 1.0f);
      s.top_p = j.value("top_p", 1.0f);
      s.top_k = j.value("top_k", 0);
      s.min_p = j.value("min_p", 0.0f);
      s.presence_penalty = j.value("presence_penalty", 0.0f);
      s.repeat_penalty = j.value("repeat_penalty", 1.0f);
      s.seed = j.contains("seed") ? j["seed"].get<uint64_t>() : std::random_device{}();
      if (j.contains("stop")) {
        if (j["stop"].is_string())
          job.gen.stop = {j["stop"].get<std::string>()};
        else
          job.gen.stop = j["stop"].get<std::vector<std::string>>();
      }
      if (chat) {
        if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty()) {
          http_fail(400, "'messages' must be a non-empty array");
        }
        for (const auto& m : j["messages"]) {
          const std::string role = m.at("role").get<std::string>();
          const std::string content = m.at("content").get<std::string>();
          if (role == "system") {
            if (job.cloud_prompt) {
              http_fail(400,
                        "a request with 'cloud_prompt' takes its system part from the cloud; "
                        "send no system message");
            }
            if (!job.messages.empty() || !job.system.empty()) {
              http_fail(400, "the system message must come first");
            }
            job.system = content;
          } else if (role == "user" || role == "assistant") {
            job.messages.push_back({role, content});
          } else {
            http_fail(400, fmt::format("unknown message role '{}'", role));
          }
        }
      } else {
        if (!j.contains("prompt")) http_fail(400, "'prompt' is required");
        if (j["prompt"].is_string()) {
          job.prompt = j["prompt"].get<std::string>();
        } else {
          job.prompt_ids = j["prompt"].get<std::vector<int32_t>>();
        }
      }
    } catch (const HttpError&) {
      throw;
    } catch (const std::exception& e) {
      http_fail(400, fmt::format("invalid request: {}", e.what()));
    }
    if (job.gen.max_tokens < 1) http_fail(400, "max_tokens must be at least 1");
    return job;
  }

  // ---- the cloud prompt -----------------------------------------------------------------------

  CloudKv resolve_cloud_prompt(const std::string& id) {
    if (opt.cloud_url.empty()) http_fail(400, "this edge has no cloud configured (--cloud URL)");
    CloudKv kv;
    kv.id = id;
    httplib::Client client(opt.cloud_url);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(30, 0);
    auto res = client.Get("/v1/cloud-prompts/" + id);
    if (!res) {
      http_fail(502, fmt::format("cloud unreachable at {}: {}", opt.cloud_url,
                                 httplib::to_string(res.error())));
    }
    if (res->status == 404) http_fail(404, fmt::format("unknown cloud prompt '{}'", id));
    if (res->status != 200)
      http_fail(502, fmt::format("cloud answered {}: {}", res->status, res->body));
    json meta;
    try {
      meta = json::parse(res->body);
    } catch (const std::exception&) {
      http_fail(502, "cloud sent malformed prompt metadata");
    }
    if (meta.value("fingerprint", "") != fingerprint) {
      http_fail(409, fmt::format("model mismatch: the cloud runs {}, this edge runs {}",
                                 meta.value("fingerprint", "?"), fingerprint));
    }
    kv.version = meta.value("version", uint64_t(0));
    kv.chat_template = meta.value("chat_template", std::string("none"));
    if (auto seg = cache.get(id, kv.version)) {
      ++cache_hits;
      kv.segment = seg;
      kv.source = "edge-cache";
    } else {
      ++cache_misses;
      try {
        kv.fetch_started = std::chrono::steady_clock::now();
        kv.fetch = std::make_unique<CloudKvFetch>(opt.cloud_url, id, model, fingerprint);
      } catch (const Error& e) {
        const std::string m = e.what();
        http_fail(m.find("model mismatch") != std::string::npos ? 409
                  : m.find("answered 404") != std::string::npos ? 404
                                                                : 502,
                  m);
      }
      kv.segment = kv.fetch->segment();
      kv.version = kv.fetch->header().prompt_version;
      kv.chat_template = kv.fetch->header().chat_template;
      kv.source = "stream";
    }
    kv.n_tokens = size_t(kv.segment->n_tokens());
    return kv;
  }

  // The private tokens: the edge's part of the conversation, tokenised here.
  std::vector<int32_t> private_tokens(const Job& job, const CloudKv* kv) {
    if (!job.chat) {
      if (job.prompt_ids) {
        for (int32_t t : *job.prompt_ids) {
          if (t < 0 || t >= model.hp.n_vocab)
            http_fail(400, fmt::format("token id {} out of range", t));
        }
        return *job.prompt_ids;
      }
      return tokenizer.encode(job.prompt, kv == nullptr && tokenizer.add_bos_default(),
                              kv == nullptr);
    }
    const ChatFormat format = kv ? chat_format_from_name(kv->chat_template) : local_format;
    try {
      if (kv) {
        // The cloud computed the system part; render with a stand-in system message to get the
        // suffix that follows a system part in this format.
        const RenderedChat r = render_chat(format, "system", job.messages);
        return chat_tokens(tokenizer, {"", r.suffix}, format).suffix;
      }
      const ChatTokens t =
          chat_tokens(tokenizer, render_chat(format, job.system, job.messages), format);
      std::vector<int32_t> all = t.prefix;
      all.insert(all.end(), t.suffix.begin(), t.suffix.end());
      return all;
    } catch (const Error& e) {
      http_fail(400, e.what());
    }
  }

  // ---- responses ------------------------------------------------------------------------------

  // Times count from the request's arrival at the edge: `setup_s` covers the cloud metadata
  // request, the start of the KV stream, tokenisation and waiting for the compute lock.
  json usage(const GenerationResult& r, const Job& job, const CloudKv* kv, double setup_s,
             std::chrono::steady_clock::time_point t_request) {
    const size_t cloud_tokens = kv ? kv->n_tokens : 0;
    const size_t edge_tokens = job.gen.tokens.size();
    json timings = {{"ttft_ms", (setup_s + r.ttft_s) * 1e3},
                    {"setup_ms", setup_s * 1e3},
                    {"prompt_ms", r.prompt_s * 1e3},
                    {"generation_ms", r.generation_s * 1e3},
                    {"kv_source", kv ? kv->source : "none"},
                    {"kv_bytes_received", kv && kv->fetch ? kv->fetch->bytes_received() : 0}};
    json layers = json::array();
    std::vector<double> arrival =
        kv && kv->fetch ? kv->fetch->layer_arrival_s() : std::vector<double>{};
    if (kv && kv->fetch) {
      const double offset = std::chrono::duration<double>(kv->fetch_started - t_request).count();
      for (double& a : arrival) a += offset;
    }
    for (size_t l = 0; l < r.prompt_layers.size(); ++l) {
      json e = {{"layer", l},
                {"wait_ms", r.prompt_layers[l].wait_s * 1e3},
                {"compute_ms", r.prompt_layers[l].compute_s * 1e3}};
      if (l < arrival.size()) e["kv_arrival_ms"] = arrival[l] * 1e3;
      layers.push_back(e);
    }
    timings["layers"] = layers;
    return {{"prompt_tokens", cloud_tokens + edge_tokens},
            {"completion_tokens", r.ids.size()},
            {"total_tokens", cloud_tokens + edge_tokens + r.ids.size()},
            {"cloud_tokens", cloud_tokens},
            {"edge_tokens", edge_tokens},
            {"timings", timings}};
  }

  json chunk(const Job& job, const std::string& id, const std::string& text,
             const std::optional<std::string>& finish) {
    const json fin = finish ? json(*finish) : json(nullptr);
    if (job.chat) {
      return {{"id", id},
              {"object", "chat.completion.chunk"},
              {"created", std::time(nullptr)},
              {"model", job.model_name},
              {"choices",
               {{{"index", 0},
                 {"delta", text.empty() ? json::object() : json{{"content", text}}},
                 {"finish_reason", fin}}}}};
    }
    return {{"id", id},
            {"object", "text_completion"},
            {"created", std::time(nullptr)},
            {"model", job.model_name},
            {"choices", {{{"index", 0}, {"text", text}, {"finish_reason", fin}}}}};
  }

  // Runs a job; `on_text` streams pieces. Returns the final JSON (usage included).
  json run(Job& job, const std::string& id,
           const std::function<bool(const std::string&)>& on_text) {
    const auto t_request = std::chrono::steady_clock::now();
    std::optional<CloudKv> kv;
    if (job.cloud_prompt) kv = resolve_cloud_prompt(*job.cloud_prompt);
    job.gen.tokens = private_tokens(job, kv ? &*kv : nullptr);
    if (job.gen.tokens.empty()) http_fail(400, "the prompt is empty");
    job.gen.prefix = kv ? kv->segment : nullptr;
    GenerationResult r;
    double setup_s = 0;
    {
      std::lock_guard lock(compute_mutex);
      setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request).count();
      try {
        r = generate(model, &tokenizer, pool, job.gen, on_text);
      } catch (const Error& e) {
        const std::string m = e.what();
        http_fail(
            m.find("cloud prompt") != std::string::npos || m.find("KV stream") != std::string::npos
                ? 502
                : 400,
            m);
      }
    }
    if (kv && kv->fetch) {
      // Keep the streamed KV for the next request (complete by now: the prompt pass used it all).
      kv_bytes_streamed += kv->fetch->bytes_received();
      try {
        kv->fetch->wait_complete();
        cache.put(kv->id, kv->version, kv->fetch->stream_bytes());
      } catch (const std::exception& e) {
        fmt::print(stderr, "edge: not caching KV of '{}': {}\n", kv->id, e.what());
      }
    }
    prompt_tokens += job.gen.tokens.size() + (kv ? kv->n_tokens : 0);
    completion_tokens += r.ids.size();
    json out;
    if (job.chat) {
      out = {{"id", id},
             {"object", "chat.completion"},
             {"created", std::time(nullptr)},
             {"model", job.model_name},
             {"choices",
              {{{"index", 0},
                {"message", {{"role", "assistant"}, {"content", r.text}}},
                {"finish_reason", r.finish_reason}}}}};
    } else {
      out = {{"id", id},
             {"object", "text_completion"},
             {"created", std::time(nullptr)},
             {"model", job.model_name},
             {"choices", {{{"index", 0}, {"text", r.text}, {"finish_reason", r.finish_reason}}}}};
    }
    out["usage"] = usage(r, job, kv ? &*kv : nullptr, setup_s, t_request);
    if (kv) out["cloud_prompt"] = {{"id", kv->id}, {"version", kv->version}};
    return out;
  }

  void handle(const httplib::Request& req, httplib::Response& res, bool chat) {
    ++requests;
    Job job;
    try {
      job = parse(req.body, chat);
    } catch (const HttpError& e) {
      ++errors;
      return send_error(res, e.status, e.what());
    }
    const std::string id = request_id();
    if (!job.stream) {
      try {
        res.set_content(run(job, id, [](const std::string&) { return true; }).dump() + "\n",
                        "application/json");
      } catch (const HttpError& e) {
        ++errors;
        send_error(res, e.status, e.what());
      } catch (const std::exception& e) {
        ++errors;
        send_error(res, 500, e.what());
      }
      return;
    }
    // Server-sent events: one chunk per piece of text, then the final chunk with usage, then
    // [DONE]. An error after the stream began is sent as an error event.
    auto shared_job = std::make_shared<Job>(std::move(job));
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, shared_job, id](size_t, httplib::DataSink& sink) {
          const auto event = [&](const json& j) {
            const std::string s = "data: " + j.dump() + "\n\n";
            return sink.write(s.data(), s.size());
          };
          try {
            json final_json = run(*shared_job, id, [&](const std::string& text) {
              return event(chunk(*shared_job, id, text, std::nullopt));
            });
            json last = chunk(*shared_job, id, "",
                              final_json["choices"][0]["finish_reason"].get<std::string>());
            last["usage"] = final_json["usage"];
            event(last);
          } catch (const HttpError& e) {
            ++errors;
            event(error_body(e.status, e.what()));
          } catch (const std::exception& e) {
            ++errors;
            event(error_body(500, e.what()));
          }
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        });
  }

  std::string metrics_text() {
    return fmt::format(
        "# TYPE edgeprompt_edge_requests_total counter\nedgeprompt_edge_requests_total {}\n"
        "# TYPE edgeprompt_edge_errors_total counter\nedgeprompt_edge_errors_total {}\n"
        "# TYPE edgeprompt_edge_prompt_tokens_total counter\nedgeprompt_edge_prompt_tokens_total "
        "{}\n"
        "# TYPE edgeprompt_edge_completion_tokens_total "
        "counter\nedgeprompt_edge_completion_tokens_total {}\n"
        "# TYPE edgeprompt_edge_kv_bytes_received_total "
        "counter\nedgeprompt_edge_kv_bytes_received_total {}\n"
        "# TYPE edgeprompt_edge_kv_cache_hits_total counter\nedgeprompt_edge_kv_cache_hits_total "
        "{}\n"
        "# TYPE edgeprompt_edge_kv_cache_misses_total "
        "counter\nedgeprompt_edge_kv_cache_misses_total {}\n"
        "# TYPE edgeprompt_edge_kv_cache_bytes gauge\nedgeprompt_edge_kv_cache_bytes {}\n"
        "# TYPE edgeprompt_edge_kv_cache_entries gauge\nedgeprompt_edge_kv_cache_entries {}\n",
        requests.load(), errors.load(), prompt_tokens.load(), completion_tokens.load(),
        kv_bytes_streamed.load(), cache_hits.load(), cache_misses.load(), cache.bytes(),
        cache.size());
  }

  void routes() {
    server.Post("/v1/chat/completions",
                [this](const httplib::Request& q, httplib::Response& r) { handle(q, r, true); });
    server.Post("/v1/completions",
                [this](const httplib::Request& q, httplib::Response& r) { handle(q, r, false); });
    server.Get("/v1/models", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(json{{"object", "list"},
                         {"data",
                          {{{"id", "edgeprompt"},
                            {"object", "model"},
                            {"owned_by", "local"},
                            {"fingerprint", fingerprint}}}}}
                            .dump() +
                        "\n",
                    "application/json");
    });
    server.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(
          json{{"status", "ok"}, {"fingerprint", fingerprint}, {"cloud", opt.cloud_url}}.dump() +
              "\n",
          "application/json");
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(metrics_text(), "text/plain; version=0.0.4");
    });
    server.set_error_handler([](const httplib::Request& q, httplib::Response& r) {
      if (r.body.empty())
        send_error(r, r.status, fmt::format("{} {}: no such endpoint", q.method, q.path));
    });
  }
};

EdgeService::EdgeService(const Model& model, const Tokenizer& tokenizer, EdgeOptions options)
    : impl_(std::make_unique<Impl>(model, tokenizer, std::move(options))) {}

EdgeService::~EdgeService() = default;

int EdgeService::bind() {
  auto& o = impl_->opt;
  o.port = bind_http_server(impl_->server, o.host, o.port);
  return o.port;
}

void EdgeService::serve() {
  impl_->server.listen_after_bind();
}
void EdgeService::stop() {
  impl_->server.stop();
}

}  // namespace ep
