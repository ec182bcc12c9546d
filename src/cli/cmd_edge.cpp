// edgeprompt edge --model M --cloud https://HOST:PORT [--cloud-ca F] [--cloud-cert F --cloud-key K]
// --listen 127.0.0.1:PORT (--tls-cert F --tls-key K | --insecure-http) [--kv-cache-dir DIR]
#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/listen_address.h"
#include "cli/serve_service.h"
#include "core/error.h"
#include "edge/edge_service.h"
#include "http/auth.h"
#include "model/model.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/tokenizer.h"

#include <fmt/core.h>

#include <memory>
#include <thread>

namespace ep::cli {

Command add_edge(CLI::App& root) {
  struct Options {
    std::string model, cloud, listen = "127.0.0.1:8081", kv_cache_dir;
    uint64_t kv_cache_bytes = 1ull << 30;
    std::string kv_codec, kv_plan;
    int threads = ThreadPool::default_threads();
    EngineFlags engine{edge_engine_options(), ""};
    ServerTransport transport;
    http::TlsClientOptions cloud_tls;
    std::string cloud_token_file;
    double revalidate_s = 2;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand(
      "edge", "OpenAI-compatible API on this device; cloud prompts' KV comes from the cloud");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory")->required();
  app->add_option("--cloud", o->cloud, "The cloud service's URL, e.g. https://10.0.0.2:8080");
  app->add_option("--cloud-ca", o->cloud_tls.ca_file,
                  "PEM CA(s) the cloud's certificate must chain to (default: the system roots)");
  app->add_option("--cloud-cert", o->cloud_tls.cert_file,
                  "PEM client certificate to present to the cloud (mutual TLS)");
  app->add_option("--cloud-key", o->cloud_tls.key_file, "PEM private key of --cloud-cert");
  app->add_option("--revalidate-s", o->revalidate_s,
                  "Seconds a cloud prompt's description is trusted before the edge asks again "
                  "(If-None-Match); 0: before every request")
      ->check(CLI::Range(0.0, 86400.0));
  app->add_option("--cloud-token-file", o->cloud_token_file,
                  "File whose first line is the edge's token at the cloud (or "
                  "EDGEPROMPT_CLOUD_TOKEN)");
  app->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)");
  app->add_option("--kv-cache-dir", o->kv_cache_dir, "Directory for the persistent KV cache");
  app->add_option("--kv-cache-bytes", o->kv_cache_bytes, "KV cache budget in bytes (LRU)");
  app->add_option("--kv-plan", o->kv_plan,
                  "How a cloud prompt's KV the edge does not hold reaches it: auto (the fastest "
                  "by eq. 7 with the measured link), f16, int8, int4 (streamed) or local "
                  "(recomputed here); default: streamed as --kv-codec asks")
      ->check(CLI::IsMember({"auto", "f16", "int8", "int4", "local"}));
  app->add_option(
      "--kv-codec", o->kv_codec,
      std::string("Codec to ask the cloud's KV streams in (default: the cloud's, f16): ") +
          kKvCodecNames);
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  add_engine_flags(app, o->engine, "--kv-pool-bytes", false);
  o->transport.limits = http::edge_http_limits();
  add_server_transport_flags(app, o->transport);
  return {app, [o] {
            const StopSignals signals;
            check_server_transport(o->transport, "edge");
            http::check_client_tls(o->cloud_tls);
            if (o->cloud.rfind("http://", 0) == 0 && !o->transport.insecure_http) {
              fail(
                  "edge: --cloud {}: plain HTTP to the cloud needs --insecure-http (or an "
                  "https:// URL)",
                  o->cloud);
            }
            if (!o->cloud.empty() && o->cloud.rfind("https://", 0) != 0 &&
                o->cloud.rfind("http://", 0) != 0) {
              fail("edge: --cloud {}: expected https://HOST:PORT", o->cloud);
            }
            EdgeOptions opt;
            opt.tls = o->transport.tls;
            opt.limits = o->transport.limits;
            opt.revalidate_s = o->revalidate_s;
            const auto log = open_request_log(o->transport);
            opt.request_log = log.get();
            opt.cloud.tls = o->cloud_tls;
            opt.cloud.admin_token =
                http::read_secret(o->cloud_token_file, "EDGEPROMPT_CLOUD_TOKEN");
            std::tie(opt.host, opt.port) = parse_listen_address(o->listen);
            opt.cloud.base_url = o->cloud;
            opt.kv_cache_dir = o->kv_cache_dir;
            opt.kv_cache_bytes = o->kv_cache_bytes;
            opt.kv_plan = o->kv_plan;
            if (!o->kv_codec.empty()) {
              opt.kv_codec = kv_codec_from_name(o->kv_codec);
              if (!opt.kv_codec)
                fail("--kv-codec: '{}' is not one of {}", o->kv_codec, kKvCodecNames);
            }
            opt.threads = o->threads;
            opt.engine = engine_options(o->engine);
            const auto model = load_model(o->model);
            const auto tokenizer = load_tokenizer(*model->source);
            if (!tokenizer)
              fail("{}: the model has no tokenizer; the edge API needs one", o->model);
            EdgeService service(*model, *tokenizer, opt);
            return serve_until_stopped(
                service, signals, "edge",
                fmt::format("model {}, cloud {}", o->model, o->cloud.empty() ? "none" : o->cloud));
          }};
}

}  // namespace ep::cli
