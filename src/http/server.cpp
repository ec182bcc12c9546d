#include "http/server.h"

#include "core/error.h"
#include "http/response.h"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace ep::http {

namespace detail {

// httplib's server (plain or TLS) with its listening socket in reach: httplib listens with a
// backlog of 5, which drops connections when a few dozen clients connect at once.
template <class Base>
class Listening : public Base {
 public:
  using Base::Base;
  static int socket_of(httplib::Server& s) { return static_cast<Listening&>(s).svr_sock_; }
};

std::unique_ptr<httplib::Server> make_server(const TlsServerOptions& tls,
                                             int (*&socket_of)(httplib::Server&)) {
  if (!tls.enabled()) {
    socket_of = &Listening<httplib::Server>::socket_of;
    return std::make_unique<Listening<httplib::Server>>();
  }
  socket_of = &Listening<httplib::SSLServer>::socket_of;
  auto s = std::make_unique<Listening<httplib::SSLServer>>(
      tls.cert_file.c_str(), tls.key_file.c_str(),
      tls.client_ca_file.empty() ? nullptr : tls.client_ca_file.c_str());
  if (!s->is_valid()) {
    const std::string why = take_openssl_error();
    ep::fail("cannot use TLS certificate {} with key {}{}{}", tls.cert_file, tls.key_file,
             tls.client_ca_file.empty() ? "" : " and client CA " + tls.client_ca_file,
             why.empty() ? "" : ": " + why);
  }
  return s;
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
    : limits_(limits), tls_(tls.enabled()) {
  server_ = detail::make_server(tls, listening_socket_);
  httplib::Server& s = *server_;
  const int threads = limits_.worker_threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  s.set_payload_max_length(limits_.max_body_bytes);
  s.set_read_timeout(limits_.read_timeout);
  s.set_write_timeout(limits_.write_timeout);
  s.set_keep_alive_timeout(limits_.keep_alive_timeout.count());
  s.set_keep_alive_max_count(limits_.keep_alive_max_requests);
  // SO_REUSEADDR only: with httplib's default SO_REUSEPORT a second server could bind the same
  // port and silently take half of its connections.
  s.set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
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

HttpServer::~HttpServer() = default;

void HttpServer::log_requests(std::FILE* out,
                              std::function<std::string(const httplib::Request&)> tenant_of) {
  log_ = std::make_unique<RequestLog>(out);
  tenant_of_ = std::move(tenant_of);
  server_->set_logger([this](const httplib::Request& q, const httplib::Response& r) {
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
  return *server_;
}

int HttpServer::bind(const std::string& host, int port) {
  int bound = port;
  if (port == 0) {
    bound = server_->bind_to_any_port(host);
    if (bound < 0) ep::fail("cannot listen on {}", host);
  } else if (!server_->bind_to_port(host, port)) {
    ep::fail("cannot listen on {}:{} (in use or not permitted)", host, port);
  }
  // Listening again on a listening socket only changes its backlog.
  if (::listen(listening_socket_(*server_), limits_.listen_backlog) != 0) {
    ep::fail("cannot listen on {}:{}: {}", host, bound, std::strerror(errno));
  }
  return bound;
}

void HttpServer::serve() {
  if (stop_requested_) return;
  serving_ = true;
  if (!stop_requested_) server_->listen_after_bind();
  served_ = true;
}

void HttpServer::stop() {
  stop_requested_ = true;
  server_->stop();
  // httplib ignores a stop before its loop runs: repeat until a serve() in progress returns.
  while (serving_ && !served_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    server_->stop();
  }
}

}  // namespace ep::http
