#include "net/cloud_service.h"

#include "core/error.h"
#include "model/fingerprint.h"
#include "net/http_bind.h"
#include "net/kv_segment_io.h"
#include "net/prompt_kv.h"
#include "runtime/transformer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

namespace ep {
namespace {

using json = nlohmann::json;

struct CloudPrompt {
  std::string id;
  uint64_t version = 0;
  std::string text;
  std::string chat_template;
  std::vector<int32_t> tokens;
  std::shared_ptr<PromptKv> kv;
  double prefill_s = 0;
};

json describe(const CloudPrompt& p, const std::string& fingerprint) {
  return {{"id", p.id},
          {"version", p.version},
          {"n_tokens", p.tokens.size()},
          {"fingerprint", fingerprint},
          {"chat_template", p.chat_template},
          {"state", !p.kv->error().empty() ? "failed"
                    : p.kv->complete()     ? "ready"
                                           : "computing"},
          {"kv_bytes", p.kv->complete() ? p.kv->stream_bytes() : 0}};
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", {{"message", message}, {"code", status}}}}.dump() + "\n",
                  "application/json");
}

std::string read_whole(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail("{}: cannot read", p.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Writes `bytes` to `path` so that a reader sees the old file or the whole new one, never a part.
void write_atomically(const std::filesystem::path& path, const std::string& bytes) {
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) fail("{}: write failed", tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

struct CloudService::Impl {
  const Model& model;
  const Tokenizer* tokenizer;
  CloudOptions opt;
  std::string fingerprint;
  ThreadPool pool;
  httplib::Server server;

  std::mutex mutex;  // guards prompts
  std::map<std::string, CloudPrompt> prompts;

  // One prefill at a time, in arrival order, on a dedicated thread.
  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<CloudPrompt> queue;
  bool stopping = false;
  std::thread worker;

  // Metrics.
  std::atomic<uint64_t> bytes_served{0}, errors{0}, streams_total{0};
  std::atomic<int64_t> active_streams{0};
  std::atomic<double> prefill_seconds{0};

  Impl(const Model& m, const Tokenizer* t, CloudOptions o)
      : model(m),
        tokenizer(t),
        opt(std::move(o)),
        fingerprint(model_fingerprint(*m.source)),
        pool(opt.threads) {
    if (!opt.cache_dir.empty()) {
      std::filesystem::create_directories(opt.cache_dir);
      reload_cache();
    }
    routes();
    worker = std::thread([this] { prefill_loop(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(queue_mutex);
      stopping = true;
    }
    queue_cv.notify_all();
    server.stop();
    worker.join();
  }

  // ---- prefill --------------------------------------------------------------------------------

  void prefill_loop() {
    for (;;) {
      CloudPrompt job;
      {
        std::unique_lock lock(queue_mutex);
        queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        job = std::move(queue.front());
        queue.pop_front();
      }
      prefill(job);
    }
  }

  void prefill(CloudPrompt& job) {
    const auto start = std::chrono::steady_clock::now();
    try {
      const KvStreamHeader& h = job.kv->header();
      const LayerSink publish = [&](int64_t layer, const float* k, const float* v, int64_t) {
        job.kv->add_layer(uint32_t(layer), encode_kv_layer(h, uint32_t(layer), k, v));
      };
      if (opt.prefill) {
        opt.prefill(job.tokens, publish);
      } else {
        Transformer tf(model, int64_t(job.tokens.size()), pool);
        tf.set_layer_observer(publish);
        std::vector<float> logits;
        tf.forward(job.tokens, logits, false);
      }
      job.kv->finish();
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      prefill_seconds.store(prefill_seconds.load() + secs);
      persist(job);
      std::lock_guard lock(mutex);
      if (auto it = prompts.find(job.id);
          it != prompts.end() && it->second.version == job.version) {
        it->second.prefill_s = secs;
      }
    } catch (const std::exception& e) {
      ++errors;
      job.kv->set_error(fmt::format("prefill of '{}' failed: {}", job.id, e.what()));
    }
  }

  // ---- disk cache -----------------------------------------------------------------------------

  std::filesystem::path meta_path(const std::string& id) const {
    return opt.cache_dir / (id + ".json");
  }
  std::filesystem::path kv_path(const std::string& id) const {
    return opt.cache_dir / (id + ".epkv");
  }

  void persist(const CloudPrompt& p) {
    if (opt.cache_dir.empty()) return;
    // KV first, metadata last: a crash in between leaves no metadata pointing at a bad file.
    write_atomically(kv_path(p.id), p.kv->all_bytes());
    write_atomically(meta_path(p.id), json{{"id", p.id},
                                           {"version", p.version},
                                           {"text", p.text},
                                           {"chat_template", p.chat_template},
                                           {"fingerprint", fingerprint}}
                                          .dump());
  }

  void reload_cache() {
    for (const auto& e : std::filesystem::directory_iterator(opt.cache_dir)) {
      if (e.path().extension() != ".json") continue;
      try {
        const json meta = json::parse(read_whole(e.path()));
        CloudPrompt p;
        p.id = meta.at("id").get<std::string>();
        p.version = meta.at("version").get<uint64_t>();
        p.text = meta.at("text").get<std::string>();
        p.chat_template = meta.at("chat_template").get<std::string>();
        if (meta.at("fingerprint") != fingerprint) fail("computed by another model");
        p.kv = PromptKv::from_bytes(read_whole(kv_path(p.id)));  // verifies every checksum
        check_kv_header(p.kv->header(), model, fingerprint);
        if (p.kv->header().prompt_version != p.version || p.kv->header().prompt_id != p.id) {
          fail("KV file does not match its metadata");
        }
        p.tokens = p.kv->header().tokens;
        prompts[p.id] = std::move(p);
      } catch (const std::exception& ex) {
        fmt::print(stderr, "cloud: ignoring cached prompt {}: {}\n", e.path().string(), ex.what());
      }
    }
  }

  // ---- HTTP -----------------------------------------------------------------------------------

  bool authorised(const httplib::Request& req, httplib::Response& res) {
    if (opt.admin_token.empty()) return true;
    if (req.get_header_value("Authorization") == "Bearer " + opt.admin_token) return true;
    send_error(res, 401, "missing or wrong admin token (Authorization: Bearer <token>)");
    return false;
  }

  std::vector<int32_t> tokenize(const json& body, std::string& text, std::string& chat_template) {
    chat_template = body.value("chat_template", std::string("none"));
    if (body.contains("tokens")) {
      std::vector<int32_t> ids = body.at("tokens").get<std::vector<int32_t>>();
      for (int32_t t : ids) {
        if (t < 0 || t >= model.hp.n_vocab) fail("token id {} out of range", t);
      }
      text = body.value("text", std::string());
      return ids;
    }
    if (!body.contains("text") || !body.at("text").is_string())
      fail("'text' (a string) is required");
    text = body.at("text").get<std::string>();
    if (tokenizer == nullptr)
      fail("this model has no tokenizer: send \"tokens\" instead of \"text\"");
    if (chat_template.empty()) chat_template = "none";
    // The system part of the chat format: the token prefix every request of this service shares.
    const ChatFormat format = chat_format_from_name(chat_template);
    const ChatMessage placeholder{"user", "x"};
    return chat_tokens(*tokenizer, render_chat(format, text, std::span(&placeholder, 1)), format)
        .prefix;
  }

  void put_prompt(const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, res)) return;
    const std::string id = req.matches[1];
    json body;
    try {
      body = json::parse(req.body);
      if (!body.is_object()) fail("body must be a JSON object");
    } catch (const std::exception& e) {
      ++errors;
      return send_error(res, 400, fmt::format("malformed JSON: {}", e.what()));
    }
    CloudPrompt p;
    p.id = id;
    try {
      p.tokens = tokenize(body, p.text, p.chat_template);
    } catch (const std::exception& e) {
      ++errors;
      return send_error(res, 400, e.what());
    }
    if (p.tokens.empty()) return send_error(res, 400, "the cloud prompt is empty");
    if (int64_t(p.tokens.size()) > model.hp.n_ctx_train) {
      return send_error(res, 400,
                        fmt::format("cloud prompt of {} tokens exceeds the context of {}",
                                    p.tokens.size(), model.hp.n_ctx_train));
    }
    json answer;
    {
      std::lock_guard lock(mutex);
      auto it = prompts.find(id);
      if (it != prompts.end() && it->second.tokens == p.tokens &&
          it->second.chat_template == p.chat_template && it->second.kv->error().empty()) {
        res.set_content(describe(it->second, fingerprint).dump() + "\n", "application/json");
        return;  // same prompt: same version, no new computation
      }
      p.version = it == prompts.end() ? 1 : it->second.version + 1;
      p.kv = std::make_shared<PromptKv>(make_kv_header(model, fingerprint, p.id, p.version,
                                                       p.chat_template, p.tokens, opt.kv_dtype));
      prompts[id] = p;
      answer = describe(p, fingerprint);
    }
    {
      std::lock_guard lock(queue_mutex);
      queue.push_back(p);
    }
    queue_cv.notify_one();
    res.status = 201;
    res.set_content(answer.dump() + "\n", "application/json");
  }

  std::optional<CloudPrompt> find(const std::string& id) {
    std::lock_guard lock(mutex);
    auto it = prompts.find(id);
    if (it == prompts.end()) return std::nullopt;
    return it->second;
  }

  void stream_kv(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const auto p = find(id);
    if (!p) return send_error(res, 404, fmt::format("unknown cloud prompt '{}'", id));
    if (req.has_param("version") && req.get_param_value("version") != std::to_string(p->version)) {
      return send_error(res, 404,
                        fmt::format("cloud prompt '{}' has version {}, not {}", id, p->version,
                                    req.get_param_value("version")));
    }
    struct State {
      std::shared_ptr<PromptKv> kv;
      uint32_t next = 0;
      bool header_sent = false;
    };
    auto st = std::make_shared<State>(State{p->kv});
    ++active_streams;
    ++streams_total;
    res.set_header("X-EdgePrompt-Fingerprint", fingerprint);
    res.set_header("X-EdgePrompt-Version", std::to_string(p->version));
    res.set_chunked_content_provider(
        "application/x-edgeprompt-kv",
        [this, st](size_t, httplib::DataSink& sink) {
          const auto write = [&](const std::string& b) {
            bytes_served += b.size();
            return sink.write(b.data(), b.size());
          };
          if (!st->header_sent) {
            st->header_sent = true;
            return write(st->kv->header_bytes());
          }
          const KvStreamHeader& h = st->kv->header();
          if (st->next < h.n_layers) {
            // Wait for the layer; the prefill may still be computing it.
            for (;;) {
              if (auto frame = st->kv->wait_layer(st->next, std::chrono::milliseconds(500))) {
                ++st->next;
                return write(*frame);
              }
              if (!st->kv->error().empty() || !sink.is_writable()) {
                ++errors;
                return false;  // drop the connection: the edge sees a truncated stream
              }
            }
          }
          write(st->kv->end_bytes());
          sink.done();
          return true;
        },
        [this](bool) { --active_streams; });
  }

  std::string metrics_text() {
    size_t n_prompts, n_ready = 0;
    {
      std::lock_guard lock(mutex);
      n_prompts = prompts.size();
      for (const auto& [id, p] : prompts) n_ready += p.kv->complete();
    }
    return fmt::format(
        "# HELP edgeprompt_cloud_prompts Cloud prompts registered.\n"
        "# TYPE edgeprompt_cloud_prompts gauge\n"
        "edgeprompt_cloud_prompts {}\n"
        "# HELP edgeprompt_cloud_prompts_ready Cloud prompts whose KV is complete.\n"
        "# TYPE edgeprompt_cloud_prompts_ready gauge\n"
        "edgeprompt_cloud_prompts_ready {}\n"
        "# HELP edgeprompt_cloud_kv_bytes_served_total KV stream bytes sent to edges.\n"
        "# TYPE edgeprompt_cloud_kv_bytes_served_total counter\n"
        "edgeprompt_cloud_kv_bytes_served_total {}\n"
        "# HELP edgeprompt_cloud_prefill_seconds_total Time spent prefilling cloud prompts.\n"
        "# TYPE edgeprompt_cloud_prefill_seconds_total counter\n"
        "edgeprompt_cloud_prefill_seconds_total {}\n"
        "# HELP edgeprompt_cloud_active_streams KV streams in progress.\n"
        "# TYPE edgeprompt_cloud_active_streams gauge\n"
        "edgeprompt_cloud_active_streams {}\n"
        "# HELP edgeprompt_cloud_streams_total KV streams started.\n"
        "# TYPE edgeprompt_cloud_streams_total counter\n"
        "edgeprompt_cloud_streams_total {}\n"
        "# HELP edgeprompt_cloud_errors_total Failed requests and prefills.\n"
        "# TYPE edgeprompt_cloud_errors_total counter\n"
        "edgeprompt_cloud_errors_total {}\n",
        n_prompts, n_ready, bytes_served.load(), prefill_seconds.load(), active_streams.load(),
        streams_total.load(), errors.load());
  }

  void routes() {
    // Connections wait on prefills; give them threads enough for many concurrent edges.
    server.new_task_queue = [] { return new httplib::ThreadPool(64); };
    const std::string id_pattern = "([A-Za-z0-9._-]{1,128})";
    server.Put("/v1/cloud-prompts/" + id_pattern,
               [this](const httplib::Request& q, httplib::Response& r) { put_prompt(q, r); });
    server.Get("/v1/cloud-prompts/" + id_pattern + "/kv",
               [this](const httplib::Request& q, httplib::Response& r) { stream_kv(q, r); });
    server.Get(
        "/v1/cloud-prompts/" + id_pattern, [this](const httplib::Request& q, httplib::Response& r) {
          const auto p = find(q.matches[1]);
          if (!p)
            return send_error(r, 404, fmt::format("unknown cloud prompt '{}'", q.matches[1].str()));
          r.set_content(describe(*p, fingerprint).dump() + "\n", "application/json");
        });
    server.Delete(
        "/v1/cloud-prompts/" + id_pattern, [this](const httplib::Request& q, httplib::Response& r) {
          if (!authorised(q, r)) return;
          const std::string id = q.matches[1];
          {
            std::lock_guard lock(mutex);
            if (prompts.erase(id) == 0)
              return send_error(r, 404, fmt::format("unknown cloud prompt '{}'", id));
          }
          if (!opt.cache_dir.empty()) {
            std::filesystem::remove(meta_path(id));
            std::filesystem::remove(kv_path(id));
          }
          r.set_content(json{{"id", id}, {"deleted", true}}.dump() + "\n", "application/json");
        });
    server.Get("/v1/cloud-prompts", [this](const httplib::Request&, httplib::Response& r) {
      json list = json::array();
      std::lock_guard lock(mutex);
      for (const auto& [id, p] : prompts) list.push_back(describe(p, fingerprint));
      r.set_content(json{{"object", "list"}, {"data", list}}.dump() + "\n", "application/json");
    });
    server.Get("/health", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(
          json{{"status", "ok"}, {"fingerprint", fingerprint}, {"model", model.hp.arch}}.dump() +
              "\n",
          "application/json");
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(metrics_text(), "text/plain; version=0.0.4");
    });
    // Anything else, including other methods on known paths.
    server.set_error_handler([](const httplib::Request& q, httplib::Response& r) {
      if (r.body.empty()) {
        send_error(r, r.status,
                   fmt::format("{} {}: {}", q.method, q.path,
                               r.status == 404 ? "no such endpoint" : "request failed"));
      }
    });
  }
};

CloudService::CloudService(const Model& model, const Tokenizer* tokenizer, CloudOptions options)
    : impl_(std::make_unique<Impl>(model, tokenizer, std::move(options))) {}

CloudService::~CloudService() = default;

int CloudService::bind() {
  auto& o = impl_->opt;
  o.port = bind_http_server(impl_->server, o.host, o.port);
  return o.port;
}

void CloudService::serve() {
  impl_->server.listen_after_bind();
}

void CloudService::stop() {
  impl_->server.stop();
}

}  // namespace ep
