#include "relay/tcp_relay.h"

#include "core/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <string>

namespace ep {

TcpRelay::TcpRelay(int upstream_port, Tamper tamper, std::string upstream_host,
                   std::string listen_host, int listen_port, LinkShape shape)
    : upstream_port_(upstream_port),
      upstream_host_(std::move(upstream_host)),
      listen_host_(std::move(listen_host)),
      tamper_(std::move(tamper)),
      shape_(shape) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, listen_host_.c_str(), &addr.sin_addr) != 1) {
    close(listen_fd_);
    fail("relay: '{}' is not an IPv4 address", listen_host_);
  }
  addr.sin_port = htons(uint16_t(listen_port));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0) {
    close(listen_fd_);
    fail("relay: cannot listen on {}:{}", listen_host_, listen_port);
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TcpRelay::~TcpRelay() {
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  acceptor_.join();
  for (auto& t : threads_) t.join();
}

std::string TcpRelay::client_to_server() const {
  std::lock_guard lock(mutex_);
  return up_;
}

std::string TcpRelay::server_to_client() const {
  std::lock_guard lock(mutex_);
  return down_;
}

void TcpRelay::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    const int server = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, upstream_host_.c_str(), &addr.sin_addr);
    addr.sin_port = htons(uint16_t(upstream_port_));
    if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(client);
      close(server);
      continue;
    }
    const int n = connections_++;
    threads_.emplace_back([this, client, server, n] { pump(client, server, n); });
  }
}

namespace {

using Clock = std::chrono::steady_clock;

// One direction of a relayed connection as an emulated link: chunks leave when the link has
// serialised them and the latency has passed. Reading stops while much is in flight, so a slow
// link pushes back on the sender as TCP would.
class Direction {
 public:
  Direction(int to, const LinkShape& shape) : to_(to), shape_(shape) {}

  void push(std::string chunk) {
    const auto now = Clock::now();
    wire_free_ = std::max(now, wire_free_) + shape_.serialisation(chunk.size());
    in_flight_ += chunk.size();
    queue_.push_back({wire_free_ + shape_.latency, std::move(chunk)});
  }
  // Writes what is due; false if the receiver is gone.
  bool deliver() {
    const auto now = Clock::now();
    while (!queue_.empty() && queue_.front().due <= now) {
      const std::string& c = queue_.front().bytes;
      // MSG_NOSIGNAL: a receiver that hung up is an error to report, not a SIGPIPE for the process.
      if (send(to_, c.data(), c.size(), MSG_NOSIGNAL) != ssize_t(c.size())) return false;
      in_flight_ -= c.size();
      queue_.pop_front();
    }
    return true;
  }
  bool accepting() const { return in_flight_ < kMaxInFlight; }
  bool empty() const { return queue_.empty(); }
  // Milliseconds until the next chunk is due (poll's timeout), at most `cap`.
  int wait_ms(int cap) const {
    if (queue_.empty()) return cap;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(queue_.front().due - Clock::now());
    return int(std::clamp<int64_t>(ms.count(), 0, cap));
  }

 private:
  static constexpr size_t kMaxInFlight = size_t(4) << 20;
  struct Chunk {
    Clock::time_point due;
    std::string bytes;
  };
  int to_;
  const LinkShape& shape_;
  std::deque<Chunk> queue_;
  Clock::time_point wire_free_{};
  size_t in_flight_ = 0;
};

}  // namespace

void TcpRelay::pump(int client, int server, int connection) {
  size_t down_offset = 0;
  char buf[16384];
  Direction up(server, shape_), down(client, shape_);
  bool reading = true;  // until either side closes; then what is in flight is still delivered
  while (!stop_ && (reading || !up.empty() || !down.empty())) {
    pollfd p[2] = {{client, short(reading && up.accepting() ? POLLIN : 0), 0},
                   {server, short(reading && down.accepting() ? POLLIN : 0), 0}};
    poll(p, 2, std::min(up.wait_ms(100), down.wait_ms(100)));
    if (reading && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = read(client, buf, sizeof buf);
      if (n <= 0) {
        reading = false;
      } else {
        {
          std::lock_guard lock(mutex_);
          up_.append(buf, size_t(n));
        }
        up.push(std::string(buf, size_t(n)));
      }
    }
    if (reading && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = read(server, buf, sizeof buf);
      if (n <= 0) {
        reading = false;
      } else {
        std::string chunk(buf, size_t(n));
        {
          std::lock_guard lock(mutex_);
          down_ += chunk;
        }
        if (tamper_ && !tamper_(connection, down_offset, chunk)) break;
        down_offset += size_t(n);
        down.push(std::move(chunk));
      }
    }
    if (!up.deliver() || !down.deliver()) break;
  }
  close(client);
  close(server);
}

}  // namespace ep
