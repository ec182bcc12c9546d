// Every limit and timeout of an HTTP service, in one place: what a client may send, how long a
// connection may sit, how many requests are served at once.
#pragma once

#include <chrono>
#include <cstddef>

namespace ep::http {

struct HttpLimits {
  size_t max_body_bytes = size_t(16) << 20;    // larger request bodies are answered 413
  std::chrono::seconds read_timeout{5};        // for a request's bytes to arrive
  std::chrono::seconds write_timeout{5};       // for a response's bytes to leave
  std::chrono::seconds keep_alive_timeout{5};  // an idle kept-alive connection is closed
  size_t keep_alive_max_requests = 100;        // then the connection is closed
  int worker_threads = 8;                      // requests (and streams) served at once
  int listen_backlog = 1024;  // connections the kernel holds before they are accepted
};

// The edge serves one device's users; the cloud holds a connection open per KV stream, which
// waits on prefills, so it needs threads enough for many concurrent edges.
inline HttpLimits edge_http_limits() {
  return {};
}
inline HttpLimits cloud_http_limits() {
  HttpLimits l;
  l.worker_threads = 64;
  return l;
}

}  // namespace ep::http
