#include "http/connection_loop.h"

#include "core/error.h"
#include "http/response.h"

#include <netdb.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ep::http {
namespace {

// How often idle connections are checked against their deadlines.
constexpr std::chrono::milliseconds kSweep{50};
// Descriptors kept free for files, the cloud connection and the like.
constexpr int kReservedDescriptors = 64;
// Longest request head (line and headers) gathered; httplib's own line limits are lower.
constexpr size_t kMaxHead = 64 * 1024;

int descriptor_budget() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return std::max(16, int(std::min<rlim_t>(r.rlim_cur, 1 << 20)) - kReservedDescriptors);
}

}  // namespace

void raise_open_files_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
  r.rlim_cur = std::min<rlim_t>(r.rlim_max, 1 << 20);
  setrlimit(RLIMIT_NOFILE, &r);
}

ConnectionLoop::ConnectionLoop(HttpLimits limits, SSL_CTX* tls, ServeOne serve_one)
    : limits_(limits),
      tls_(tls),
      serve_one_(std::move(serve_one)),
      max_connections_(std::min(limits.max_connections, descriptor_budget())) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0)
    ep::fail("cannot create the connection loop: {}", std::strerror(errno));
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = wake_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &e);
}

ConnectionLoop::~ConnectionLoop() {
  stop();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  for (const int fd : {listen_fd_, epoll_fd_, wake_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

int ConnectionLoop::bind(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int r =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found)) {
    ep::fail("cannot listen on {}:{}: {}", host, port, gai_strerror(r));
  }
  std::string why = "no address";
  for (addrinfo* a = found; a != nullptr && listen_fd_ < 0; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR only: with SO_REUSEPORT a second server could bind the same port and
    // silently take half of the connections.
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, limits_.listen_backlog) == 0) {
      listen_fd_ = fd;
    } else {
      why = std::strerror(errno);
      ::close(fd);
    }
  }
  ::freeaddrinfo(found);
  if (listen_fd_ < 0) ep::fail("cannot listen on {}:{} ({})", host, port, why);
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  const int bound = a.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6&>(a).sin6_port)
                                            : ntohs(reinterpret_cast<sockaddr_in&>(a).sin_port);
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = listen_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &e);
  return bound;
}

void ConnectionLoop::run() {
  if (listen_fd_ < 0) ep::fail("the service was not bound to an address");
  for (int i = 0; i < limits_.worker_threads; ++i) workers_.emplace_back([this] { work(); });
  auto last_sweep = Clock::now();
  std::vector<epoll_event> events(256);
  while (!stopping_) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), int(events.size()), int(kSweep.count()));
    for (int i = 0; i < n; ++i) {
      const int fd = events[size_t(i)].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        while (::read(wake_fd_, &count, sizeof count) > 0) {
        }
        take_returned();
      } else if (fd == listen_fd_) {
        accept_all();
      } else {
        on_readable(fd);
      }
    }
    const auto now = Clock::now();
    if (now - last_sweep >= kSweep) {
      close_expired();
      last_sweep = now;
    }
    if (accept_paused_until_ != Clock::time_point{} && now >= accept_paused_until_) {
      accept_paused_until_ = {};
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.fd = listen_fd_;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &e);
    }
  }
  // Shutting down: refuse new connections, cut answers in progress, let the workers finish,
  // close every connection.
  ::close(listen_fd_);
  listen_fd_ = -1;
  {
    std::lock_guard lock(mutex_);
    for (Connection* c : busy_) c->abort();
  }
  work_ready_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  for (size_t i = 0; i < idle_.size(); ++i) closed();
  idle_.clear();
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < ready_.size() + returned_.size(); ++i) closed();
  ready_.clear();
  returned_.clear();
}

void ConnectionLoop::stop() {
  stopping_ = true;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t w = ::write(wake_fd_, &one, sizeof one);
  work_ready_.notify_all();
}

void ConnectionLoop::accept_all() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop accepting for a moment instead of spinning on the listener.
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        accept_paused_until_ = Clock::now() + std::chrono::milliseconds(100);
      }
      return;
    }
    stats_.accepted_total.fetch_add(1, std::memory_order_relaxed);
    if (stats_.open.load(std::memory_order_relaxed) >= max_connections_) {
      refuse(fd);
      continue;
    }
    stats_.open.fetch_add(1, std::memory_order_relaxed);
    SSL* ssl = nullptr;
    if (tls_) {
      ssl = SSL_new(tls_);
      if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        if (ssl) SSL_free(ssl);
        ::close(fd);
        closed();
        continue;
      }
    }
    Idle idle;
    idle.connection =
        std::make_unique<Connection>(fd, ssl, limits_.read_timeout, limits_.write_timeout);
    idle.deadline = Clock::now() + limits_.keep_alive_timeout;
    park(std::move(idle));
  }
}

void ConnectionLoop::refuse(int fd) {
  stats_.refused_total.fetch_add(1, std::memory_order_relaxed);
  if (!tls_) {
    // One non-blocking attempt: a client that cannot take 200 bytes now is not waited for.
    const std::string body =
        error_body(ErrorKind::Unavailable, "the service has " + std::to_string(max_connections_) +
                                               " connections open, its limit; retry later")
            .dump() +
        "\n";
    const std::string answer =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    [[maybe_unused]] const ssize_t w =
        ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  ::close(fd);
}

void ConnectionLoop::park(Idle idle) {
  const int fd = idle.connection->fd();
  epoll_event e{};
  e.events = EPOLLIN | EPOLLRDHUP;
  e.data.fd = fd;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e) != 0) {
    closed();
    return;
  }
  idle_.emplace(fd, std::move(idle));
}

void ConnectionLoop::on_readable(int fd) {
  const auto it = idle_.find(fd);
  if (it == idle_.end()) return;
  const auto arrival = it->second.connection->take_available(kMaxHead);
  if (arrival == Connection::Arrival::Incomplete) return;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  Idle job = std::move(it->second);
  idle_.erase(it);
  if (arrival != Connection::Arrival::HeadComplete) {
    if (arrival == Connection::Arrival::HandshakeFailed)
      stats_.failed_handshakes_total.fetch_add(1, std::memory_order_relaxed);
    job.connection.reset();
    closed();
    return;
  }
  {
    std::lock_guard lock(mutex_);
    ready_.push_back(std::move(job));
  }
  work_ready_.notify_one();
}

void ConnectionLoop::close_expired() {
  const auto now = Clock::now();
  for (auto it = idle_.begin(); it != idle_.end();) {
    if (it->second.deadline <= now) {
      // Counted before the close, which is what a client sees.
      stats_.idle_closed_total.fetch_add(1, std::memory_order_relaxed);
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
      it = idle_.erase(it);
      closed();
    } else {
      ++it;
    }
  }
}

void ConnectionLoop::take_returned() {
  std::vector<Idle> back;
  {
    std::lock_guard lock(mutex_);
    back.swap(returned_);
  }
  for (auto& idle : back) park(std::move(idle));
}

void ConnectionLoop::work() {
  for (;;) {
    Idle job;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
      if (stopping_) return;
      job = std::move(ready_.front());
      ready_.pop_front();
      busy_.insert(job.connection.get());
    }
    serve(std::move(job));
  }
}

void ConnectionLoop::serve(Idle job) {
  Connection& c = *job.connection;
  bool keep = true;
  while (keep && !stopping_) {
    const bool last = c.requests_served + 1 >= limits_.keep_alive_max_requests;
    bool connection_closed = false;
    c.start_request(Clock::now() + limits_.request_timeout);
    bool ok = false;
    try {
      ok = serve_one_(c, last, connection_closed);
    } catch (const std::exception&) {
      ok = false;  // out of memory and the like: this connection ends, the service goes on
    }
    ++c.requests_served;
    if (!ok || connection_closed || last) {
      if (ok) c.close_gracefully();
      keep = false;
      break;
    }
    // The next request may be here already (pipelined, or decrypted inside TLS, where epoll
    // would not report it).
    const auto next = c.take_available(kMaxHead);
    if (next == Connection::Arrival::Incomplete) {
      job.deadline = Clock::now() + limits_.keep_alive_timeout;
      give_back(std::move(job));
      return;
    }
    keep = next == Connection::Arrival::HeadComplete;
  }
  {
    std::lock_guard lock(mutex_);
    busy_.erase(job.connection.get());
  }
  job.connection.reset();
  closed();
}

void ConnectionLoop::give_back(Idle job) {
  {
    std::lock_guard lock(mutex_);
    busy_.erase(job.connection.get());
    returned_.push_back(std::move(job));
  }
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t w = ::write(wake_fd_, &one, sizeof one);
}

}  // namespace ep::http
