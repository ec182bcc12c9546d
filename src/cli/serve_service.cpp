#include "cli/serve_service.h"

#include "core/error.h"

#include <fmt/core.h>

#include <chrono>
#include <thread>

namespace ep::cli {

void add_server_transport_flags(CLI::App* app, ServerTransport& t) {
  app->add_option("--tls-cert", t.tls.cert_file, "PEM certificate (chain) to serve HTTPS with");
  app->add_option("--tls-key", t.tls.key_file, "PEM private key of --tls-cert");
  app->add_option("--tls-client-ca", t.tls.client_ca_file,
                  "Accept only clients with a certificate this CA signed (mutual TLS)");
  app->add_flag("--insecure-http", t.insecure_http,
                "Serve plain HTTP without TLS (only on a trusted network)");
  app->add_option("--log-file", t.log_file,
                  "Append the request log (one JSON line a request) here instead of stderr");
  http::HttpLimits& l = t.limits;
  app->add_option("--http-threads", l.worker_threads,
                  "Requests (and KV streams) served at once; idle connections take none")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app->add_option("--max-connections", l.max_connections,
                  "Connections open at once (idle ones included); then 503")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app->add_option_function<int>(
         "--keep-alive-s", [&l](int s) { l.keep_alive_timeout = std::chrono::seconds(s); },
         "A connection without a whole request for this long is closed (default 5)")
      ->check(CLI::Range(1, 3600));
  app->add_option("--max-body-bytes", l.max_body_bytes, "Larger request bodies are answered 413")
      ->capture_default_str()
      ->check(CLI::Range(size_t(1), size_t(1) << 34));
}

void check_server_transport(const ServerTransport& t, std::string_view name) {
  http::check_server_transport(t.tls, t.insecure_http, std::string(name));
  if (!t.tls.enabled()) {
    fmt::print(stderr,
               "{}: warning: serving plain HTTP (--insecure-http): requests, tokens and KV "
               "cross the network unencrypted\n",
               name);
  }
}

std::shared_ptr<std::FILE> open_request_log(const ServerTransport& t) {
  if (t.log_file.empty()) return std::shared_ptr<std::FILE>(stderr, [](std::FILE*) {});
  std::FILE* f = std::fopen(t.log_file.c_str(), "a");
  if (!f) fail("--log-file {}: cannot open it for appending", t.log_file);
  return std::shared_ptr<std::FILE>(f, [](std::FILE* p) { std::fclose(p); });
}

int serve_until_stopped(http::Service& service, const StopSignals& signals, std::string_view name,
                        std::string_view details) {
  const int port = service.bind();
  fmt::print(stderr, "{}: listening on {}://{}:{} ({})\n", name, service.scheme(), service.host(),
             port, details);
  std::thread server([&] { service.serve(); });
  signals.wait();
  fmt::print(stderr, "{}: stopping\n", name);
  service.stop();
  server.join();
  return 0;
}

}  // namespace ep::cli
