// Every limit and timeout of an HTTP service, in one place: what a client may send, how long a
// connection may sit, how many requests are served at once.
#pragma once

#include <chrono>
#include <cstddef>

namespace ep::http {

struct HttpLimits {
  size_t max_body_bytes = size_t(16) << 20;    // larger request bodies are answered 413
  std::chrono::seconds read_timeout{5};        // for a request's next bytes to arrive
  std::chrono::seconds request_timeout{30};    // for a whole request (line, headers, body)
  std::chrono::seconds write_timeout{5};       // for a reader to take any more bytes
  std::chrono::seconds keep_alive_timeout{5};  // a connection silent that long is closed
  size_t keep_alive_max_requests = 100;        // then the connection is closed
  int worker_threads = 8;      // requests (and streams) served at once; idle ones take none
  int max_connections = 4096;  // open at once (capped by the descriptor limit); then 503
  int listen_backlog = 1024;   // connections the kernel holds before they are accepted
};

// The edge serves one device's users; the cloud holds a worker per KV stream in progress, which
// waits on prefills and on the edge's link, so it needs workers enough for many edges at once.
inline HttpLimits edge_http_limits() {
  return {};
}
inline HttpLimits cloud_http_limits() {
  HttpLimits l;
  l.worker_threads = 256;
  l.max_connections = 16384;
  return l;
}

}  // namespace ep::http
