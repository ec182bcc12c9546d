#include "http/server.h"

#include "core/error.h"
#include "http/response.h"

#include <fmt/format.h>
#include <httplib.h>

namespace ep::http {
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

HttpServer::HttpServer(HttpLimits limits)
    : limits_(limits), server_(std::make_unique<httplib::Server>()) {
  httplib::Server& s = *server_;
  const int threads = limits_.worker_threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  s.set_payload_max_length(limits_.max_body_bytes);
  s.set_read_timeout(limits_.read_timeout);
  s.set_write_timeout(limits_.write_timeout);
  s.set_keep_alive_timeout(limits_.keep_alive_timeout.count());
  s.set_keep_alive_max_count(limits_.keep_alive_max_requests);
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

int HttpServer::bind(const std::string& host, int port) {
  if (port == 0) {
    const int bound = server_->bind_to_any_port(host);
    if (bound < 0) ep::fail("cannot listen on {}", host);
    return bound;
  }
  if (!server_->bind_to_port(host, port)) {
    ep::fail("cannot listen on {}:{} (in use or not permitted)", host, port);
  }
  return port;
}

void HttpServer::serve() {
  server_->listen_after_bind();
}

void HttpServer::stop() {
  server_->stop();
}

}  // namespace ep::http
