#include "http/server.h"

#include "core/error.h"
#include "http/response.h"

#include <fmt/format.h>
#include <httplib.h>
#include <openssl/ssl.h>

namespace ep::http {

namespace detail {

// httplib's router with its one-request entry point in reach: the connections are ours
// (connection_loop.h), the parsing and routing of each request httplib's.
class Router : public httplib::Server {
 public:
  // httplib ends a streamed answer as soon as its listening socket is invalid, which this
  // router's never is until the service stops (it listens through the connection loop).
  Router() { svr_sock_ = 0; }
  void shut_down() { svr_sock_ = INVALID_SOCKET; }
  bool serve_one(httplib::Stream& s, bool close_connection, bool& connection_closed) {
    return process_request(s, close_connection, connection_closed, nullptr);
  }
};

void free_tls_context(SSL_CTX* ctx) {
  SSL_CTX_free(ctx);
}

TlsContext make_tls_context(const TlsServerOptions& tls) {
  if (!tls.enabled()) return {nullptr, &free_tls_context};
  TlsContext ctx(SSL_CTX_new(TLS_server_method()), &free_tls_context);
  const auto refuse = [&tls] {
    const std::string why = take_openssl_error();
    ep::fail("cannot use TLS certificate {} with key {}{}{}", tls.cert_file, tls.key_file,
             tls.client_ca_file.empty() ? "" : " and client CA " + tls.client_ca_file,
             why.empty() ? "" : ": " + why);
  };
  if (!ctx) refuse();
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    refuse();
  }
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), tls.client_ca_file.c_str(), nullptr) != 1)
      refuse();
    // Tells clients which CA's certificate to present.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx.get(), names);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

}  // namespace detail

namespace {

std::string describe_status(const httplib::Request& q, const httplib::Response& r,
                            const HttpLimits& limits) {
  switch (r.status) {
    case 404:
      return fmt::format("{} {}: no such endpoint", q.method, q.path);
    case 413:
      return fmt::format("{} {}: the request body is over the limit of {} bytes", q.method, q.path,
                         limits.max_body_bytes);
    default:
      return fmt::format("{} {}: request failed (HTTP {})", q.method, q.path, r.status);
  }
}

}  // namespace

HttpServer::HttpServer(HttpLimits limits, const TlsServerOptions& tls)
    : limits_(limits),
      tls_context_(detail::make_tls_context(tls)),
      router_(std::make_unique<detail::Router>()),
      connections_(std::make_unique<ConnectionLoop>(
          limits, tls_context_.get(),
          [router = router_.get()](Connection& c, bool close_connection, bool& closed) {
            return router->serve_one(c, close_connection, closed);
          })) {
  httplib::Server& s = *router_;
  s.set_payload_max_length(limits_.max_body_bytes);
  // httplib reads a chunked body whole whatever its size (the limit above counts only a
  // Content-Length): such bodies are refused before they are read, and the connection closed
  // (the unread body would follow as the next request).
  s.set_pre_routing_handler([this](const httplib::Request& q, httplib::Response& r) {
    if (log_) r.set_header("X-Request-Id", log_->begin());
    if (!q.has_header("Transfer-Encoding")) return httplib::Server::HandlerResponse::Unhandled;
    send_error(r, ErrorKind::LengthRequired,
               fmt::format("{} {}: a body without Content-Length (Transfer-Encoding: {}) is not "
                           "accepted; send Content-Length, at most {} bytes",
                           q.method, q.path, q.get_header_value("Transfer-Encoding"),
                           limits_.max_body_bytes));
    r.set_header("Connection", "close");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Requests no route answered (unknown paths, over-long bodies): the same error shape.
  s.set_error_handler([this](const httplib::Request& q, httplib::Response& r) {
    if (r.body.empty()) send_error(r, kind_of_status(r.status), describe_status(q, r, limits_));
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& r, std::exception_ptr thrown) {
        try {
          std::rethrow_exception(thrown);
        } catch (const HttpError& e) {
          send_error(r, e);
        } catch (const std::exception& e) {
          send_error(r, ErrorKind::Internal, e.what());
        } catch (...) {
          send_error(r, ErrorKind::Internal, "unknown failure");
        }
      });
}

HttpServer::~HttpServer() {
  // The workers route through the router and log through log_: they end first.
  connections_.reset();
}

void HttpServer::log_requests(std::FILE* out,
                              std::function<std::string(const httplib::Request&)> tenant_of) {
  log_ = std::make_unique<RequestLog>(out);
  tenant_of_ = std::move(tenant_of);
  router_->set_logger([this](const httplib::Request& q, const httplib::Response& r) {
    RequestRecord rec;
    rec.id = r.get_header_value("X-Request-Id");
    try {
      rec.tenant = tenant_of_ ? tenant_of_(q) : "";
    } catch (const std::exception&) {
      rec.tenant = "";
    }
    rec.method = q.method;
    rec.route = q.path;
    rec.status = r.status;
    rec.bytes_in = q.body.size();
    rec.bytes_out = r.body.size();  // a streamed answer's bytes are in the metrics
    log_->finish(std::move(rec));
  });
}

httplib::Server& HttpServer::routes() {
  return *router_;
}

int HttpServer::bind(const std::string& host, int port) {
  return connections_->bind(host, port);
}

void HttpServer::serve() {
  connections_->run();
}

void HttpServer::stop() {
  router_->shut_down();
  connections_->stop();
}

const ConnectionStats& HttpServer::connection_stats() const {
  return connections_->stats();
}

void HttpServer::register_connection_metrics(MetricsRegistry& metrics) const {
  const ConnectionStats* c = &connections_->stats();
  metrics.gauge("connections_open", "Client connections open (idle ones included).",
                [c] { return double(c->open.load()); });
  metrics.counter("connections_accepted_total", "Client connections accepted.",
                  [c] { return double(c->accepted_total.load()); });
  metrics.counter("connections_refused_total",
                  "Connections refused at the connection limit (503 or closed).",
                  [c] { return double(c->refused_total.load()); });
  metrics.counter("connections_idle_closed_total",
                  "Connections closed for sending no whole request within the keep-alive timeout.",
                  [c] { return double(c->idle_closed_total.load()); });
  metrics.counter("tls_handshakes_failed_total", "TLS handshakes that failed.",
                  [c] { return double(c->failed_handshakes_total.load()); });
}

}  // namespace ep::http
