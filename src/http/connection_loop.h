// The connections of a service: one thread accepts and watches every idle connection with epoll,
// and a bounded pool of workers serves only connections that have bytes to read. An idle or
// half-open socket therefore costs a descriptor, not a worker: a thousand of them do not delay a
// real request, and neither does one that trickles in its request head (the loop gathers heads;
// only complete ones reach a worker). Past `max_connections` a new connection is answered 503
// (plain HTTP) or closed (TLS) at once; one that has not sent a whole head within the keep-alive
// timeout is closed.
#pragma once

#include "http/connection.h"
#include "http/limits.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

using SSL_CTX = struct ssl_ctx_st;

namespace ep::http {

// What happened to connections, for /metrics.
struct ConnectionStats {
  std::atomic<int64_t> open{0};  // accepted and not yet closed
  std::atomic<int64_t> accepted_total{0};
  std::atomic<int64_t> refused_total{0};      // over max_connections: 503 or closed
  std::atomic<int64_t> idle_closed_total{0};  // nothing sent within the keep-alive timeout
  std::atomic<int64_t> failed_handshakes_total{0};
};

// Raises this process's open-files limit to its hard limit (a service holds a descriptor per
// connection, and the default soft limit of 1024 would cap it below max_connections).
void raise_open_files_limit();

class ConnectionLoop {
 public:
  // Serves one request read from the connection (httplib's process_request); false when the
  // connection must close. `close_connection` asks it to answer with Connection: close.
  using ServeOne = std::function<bool(Connection&, bool close_connection, bool& connection_closed)>;

  // `tls` (not owned; null for plain HTTP) must outlive the loop.
  ConnectionLoop(HttpLimits limits, SSL_CTX* tls, ServeOne serve_one);
  ~ConnectionLoop();
  ConnectionLoop(const ConnectionLoop&) = delete;
  ConnectionLoop& operator=(const ConnectionLoop&) = delete;

  // Listens on host:port (0: any free port); returns the port. Throws ep::Error.
  int bind(const std::string& host, int port);
  void run();   // until stop(); returns at once if stop() came first
  void stop();  // from any thread; answers in progress are cut
  const ConnectionStats& stats() const { return stats_; }

 private:
  using Clock = Connection::Clock;
  struct Idle {
    std::unique_ptr<Connection> connection;
    Clock::time_point deadline;  // for a whole request head to arrive
  };

  void accept_all();
  void refuse(int fd);
  void park(Idle idle);
  // Reads what arrived on an idle connection; hands it to a worker once a head is complete.
  void on_readable(int fd);
  void close_expired();
  void take_returned();
  void work();
  // Serves requests while whole heads are buffered; gives it back to the loop when it idles.
  void serve(Idle job);
  void give_back(Idle job);
  void closed() { stats_.open.fetch_sub(1, std::memory_order_relaxed); }

  HttpLimits limits_;
  SSL_CTX* tls_;
  ServeOne serve_one_;
  int max_connections_;
  int listen_fd_ = -1, epoll_fd_ = -1, wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  ConnectionStats stats_;

  // The loop thread's own: idle connections by descriptor.
  std::unordered_map<int, Idle> idle_;
  Clock::time_point accept_paused_until_{};

  std::mutex mutex_;  // guards the queues and the busy set below
  std::condition_variable work_ready_;
  std::deque<Idle> ready_;                // to serve
  std::vector<Idle> returned_;            // served and idle again: for the loop to watch
  std::unordered_set<Connection*> busy_;  // being served: stop() cuts them
  std::vector<std::thread> workers_;
};

}  // namespace ep::http
