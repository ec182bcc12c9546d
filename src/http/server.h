// An HTTP service's server: its limits (limits.h), its address, and serve/stop. Routes are
// registered on routes(); a handler that throws HttpError (or any exception) is answered with the
// OpenAI-shaped error body of its kind, and so is any request no route takes. With a certificate
// (tls.h) it serves HTTPS, and with a client CA it accepts only clients that present a
// certificate that CA signed.
#pragma once

#include "http/connection_loop.h"
#include "http/limits.h"
#include "http/metrics.h"
#include "http/request_log.h"
#include "http/tls.h"

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace ep::http {

namespace detail {
class Router;
using TlsContext = std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)>;
}  // namespace detail

class HttpServer {
 public:
  // Throws ep::Error when the certificate or key cannot be loaded.
  explicit HttpServer(HttpLimits limits = {}, const TlsServerOptions& tls = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  httplib::Server& routes();
  const HttpLimits& limits() const { return limits_; }
  const char* scheme() const { return tls_context_ ? "https" : "http"; }
  // Logs every request as one JSON line to `out` (http/request_log.h); `tenant_of` names the
  // tenant a request acted for ("" if none). Call before serve().
  void log_requests(std::FILE* out, std::function<std::string(const httplib::Request&)> tenant_of);

  // Binds to host:port (port 0: any free port); returns the bound port or throws ep::Error.
  int bind(const std::string& host, int port);
  void serve();  // until stop(); returns at once if stop() came first
  void stop();   // also when serve() is only about to start; cuts answers in progress
  const ConnectionStats& connection_stats() const;
  // connections_open, connections_refused_total, ... in `metrics`.
  void register_connection_metrics(MetricsRegistry& metrics) const;

 private:
  HttpLimits limits_;
  detail::TlsContext tls_context_;
  std::unique_ptr<detail::Router> router_;
  std::unique_ptr<ConnectionLoop> connections_;
  std::unique_ptr<RequestLog> log_;
  std::function<std::string(const httplib::Request&)> tenant_of_;
};

}  // namespace ep::http
