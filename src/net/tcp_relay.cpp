#include "net/tcp_relay.h"

#include "core/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>


namespace ep {

TcpRelay::TcpRelay(int upstream_port, Tamper tamper, std::string upstream_host,
                   std::string listen_host, int listen_port)
    : upstream_port_(upstream_port),
      upstream_host_(std::move(upstream_host)),
      listen_host_(std::move(listen_host)),
      tamper_(std::move(tamper)) {
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

void TcpRelay::pump(int client, int server, int connection) {
  size_t down_offset = 0;
  char buf[16384];
  bool open = true;
  while (open && !stop_) {
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (poll(p, 2, 100) <= 0) continue;
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = read(client, buf, sizeof buf);
      if (n <= 0) break;
      {
        std::lock_guard lock(mutex_);
        up_.append(buf, size_t(n));
      }
      if (write(server, buf, size_t(n)) != n) break;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = read(server, buf, sizeof buf);
      if (n <= 0) break;
      std::string chunk(buf, size_t(n));
      {
        std::lock_guard lock(mutex_);
        down_ += chunk;
      }
      if (tamper_ && !tamper_(connection, down_offset, chunk)) break;
      down_offset += size_t(n);
      if (write(client, chunk.data(), chunk.size()) != ssize_t(chunk.size())) open = false;
    }
  }
  close(client);
  close(server);
}

}  // namespace ep
