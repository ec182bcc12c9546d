// One client connection of a service: a non-blocking socket (and, for HTTPS, its TLS session)
// as the byte stream httplib reads a request from and writes the answer to. It outlives the
// requests on it, so bytes read ahead of one request stay buffered for the next.
//
// Time limits: the head of a request is gathered by the connection loop without a worker
// (take_available); every later wait for bytes (a body) is at most the read timeout, and the
// whole request must be read by its deadline. A write waits at most the write timeout for any
// progress: a slow reader that keeps taking bytes receives the whole answer however long it
// takes, one that stops is cut.
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

using SSL = struct ssl_st;

namespace ep::http {

class Connection : public httplib::Stream {
 public:
  using Clock = std::chrono::steady_clock;

  // Takes ownership of `fd` (already non-blocking) and of `ssl` (may be null: plain HTTP).
  Connection(int fd, SSL* ssl, std::chrono::milliseconds read_timeout,
             std::chrono::milliseconds write_timeout);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  enum class Arrival { Incomplete, HeadComplete, Closed, HandshakeFailed };
  // Takes what has arrived without waiting (completing the TLS handshake first) and says whether
  // a whole request head (line and headers) is now buffered. The connection loop calls it on
  // each readiness event, so a client that trickles its head holds no worker; a head longer
  // than `max_head` bytes closes the connection.
  Arrival take_available(size_t max_head);
  // Reads of the current request must complete by `deadline`; writes lift it (the answer has
  // begun, so the request was read).
  void start_request(Clock::time_point deadline);
  // Stops both directions at once, for a service shutting down under an answer in progress.
  void abort();
  // A TLS close_notify when the exchange ended cleanly.
  void close_gracefully();

  int fd() const { return fd_; }
  bool tls() const { return ssl_ != nullptr; }
  size_t requests_served = 0;

  // httplib::Stream
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  // Not the descriptor: httplib builds without poll() refuse descriptors past FD_SETSIZE for
  // select(), which this stream never uses; every wait here is poll().
  int socket() const override { return -1; }

 private:
  // Waits until the socket is ready for `events` (POLLIN/POLLOUT) for at most `limit`, and never
  // past the request deadline when reading. False on timeout or error.
  bool wait(short events, std::chrono::milliseconds limit) const;
  ssize_t read_some(char* ptr, size_t size);
  bool head_buffered() const;

  int fd_;
  SSL* ssl_;
  std::chrono::milliseconds read_timeout_, write_timeout_;
  Clock::time_point request_deadline_ = Clock::time_point::max();
  bool handshaken_;
  std::vector<char> buffer_;  // arrived, not yet read by httplib: from buffer_off_ on
  size_t buffer_off_ = 0;
};

}  // namespace ep::http
