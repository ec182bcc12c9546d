#include "http/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace ep::http {
namespace {

constexpr size_t kReadAhead = 16 * 1024;

void address_of(const sockaddr_storage& a, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    port = ntohs(v6.sin6_port);
  }
  ip = text;
}

}  // namespace

Connection::Connection(int fd, SSL* ssl, std::chrono::milliseconds read_timeout,
                       std::chrono::milliseconds write_timeout)
    : fd_(fd),
      ssl_(ssl),
      read_timeout_(read_timeout),
      write_timeout_(write_timeout),
      handshaken_(ssl == nullptr) {}

Connection::~Connection() {
  if (ssl_) SSL_free(ssl_);
  ::close(fd_);
}

bool Connection::wait(short events, std::chrono::milliseconds limit) const {
  auto until = Clock::now() + limit;
  if (events == POLLIN) until = std::min(until, request_deadline_);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() < 0) return false;
    pollfd p{fd_, events, 0};
    const int r = ::poll(&p, 1, int(left.count()));
    if (r > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

Connection::Arrival Connection::take_available(size_t max_head) {
  if (!handshaken_) {
    ERR_clear_error();
    const int r = SSL_accept(ssl_);
    if (r != 1) {
      const int e = SSL_get_error(ssl_, r);
      // A handshake message still on its way (our answers fit the socket's send buffer).
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Arrival::Incomplete;
      return Arrival::HandshakeFailed;
    }
    handshaken_ = true;
  }
  if (buffer_off_ == buffer_.size()) {
    buffer_.clear();
    buffer_off_ = 0;
  }
  for (;;) {
    if (head_buffered()) return Arrival::HeadComplete;
    if (buffer_.size() - buffer_off_ >= max_head) return Arrival::Closed;
    const size_t have = buffer_.size();
    buffer_.resize(have + kReadAhead);
    ssize_t r;
    if (ssl_) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, buffer_.data() + have, int(kReadAhead));
      const int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
      r = n > 0 ? n : (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? -2 : 0;
    } else {
      r = ::recv(fd_, buffer_.data() + have, kReadAhead, MSG_DONTWAIT);
      if (r < 0) r = (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -2 : 0;
    }
    buffer_.resize(have + size_t(std::max<ssize_t>(r, 0)));
    if (r == -2) return Arrival::Incomplete;
    if (r == 0) return Arrival::Closed;  // the client hung up (or the stream broke)
  }
}

bool Connection::head_buffered() const {
  static constexpr std::string_view kEnd = "\r\n\r\n";
  const std::string_view pending(buffer_.data() + buffer_off_, buffer_.size() - buffer_off_);
  return pending.find(kEnd) != std::string_view::npos;
}

void Connection::start_request(Clock::time_point deadline) {
  request_deadline_ = deadline;
}

void Connection::abort() {
  ::shutdown(fd_, SHUT_RDWR);
}

void Connection::close_gracefully() {
  if (!ssl_) return;
  // One attempt, without waiting: the peer may be gone already.
  ERR_clear_error();
  SSL_shutdown(ssl_);
}

ssize_t Connection::read_some(char* ptr, size_t size) {
  for (;;) {
    if (ssl_) {
      ERR_clear_error();
      const int r = SSL_read(ssl_, ptr, int(std::min<size_t>(size, 1 << 30)));
      if (r > 0) return r;
      const int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ) {
        if (!wait(POLLIN, read_timeout_)) return -1;
      } else if (e == SSL_ERROR_WANT_WRITE) {
        if (!wait(POLLOUT, write_timeout_)) return -1;
      } else {
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
      }
    } else {
      const ssize_t r = ::recv(fd_, ptr, size, 0);
      if (r >= 0) return r;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!wait(POLLIN, read_timeout_)) return -1;
    }
  }
}

ssize_t Connection::read(char* ptr, size_t size) {
  if (buffer_off_ < buffer_.size()) {
    const size_t n = std::min(size, buffer_.size() - buffer_off_);
    std::memcpy(ptr, buffer_.data() + buffer_off_, n);
    buffer_off_ += n;
    return ssize_t(n);
  }
  if (Clock::now() >= request_deadline_) return -1;
  // Large reads (bodies) go straight to the caller; small ones (httplib reads a header a byte
  // at a time) fill the read-ahead buffer.
  if (size >= kReadAhead) return read_some(ptr, size);
  buffer_.resize(kReadAhead);
  const ssize_t r = read_some(buffer_.data(), buffer_.size());
  if (r <= 0) {
    buffer_.clear();
    buffer_off_ = 0;
    return r;
  }
  buffer_.resize(size_t(r));
  const size_t n = std::min(size, size_t(r));
  std::memcpy(ptr, buffer_.data(), n);
  buffer_off_ = n;
  return ssize_t(n);
}

ssize_t Connection::write(const char* ptr, size_t size) {
  request_deadline_ = Clock::time_point::max();
  size_t done = 0;
  while (done < size) {
    ssize_t r;
    if (ssl_) {
      ERR_clear_error();
      const int w = SSL_write(ssl_, ptr + done, int(std::min<size_t>(size - done, 1 << 30)));
      if (w > 0) {
        done += size_t(w);
        continue;
      }
      const int e = SSL_get_error(ssl_, w);
      if (e == SSL_ERROR_WANT_WRITE) {
        if (!wait(POLLOUT, write_timeout_)) return -1;
      } else if (e == SSL_ERROR_WANT_READ) {
        if (!wait(POLLIN, read_timeout_)) return -1;
      } else {
        return -1;
      }
      continue;
    }
    // MSG_NOSIGNAL: a client that hung up is this write's error, not a signal for the process.
    r = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
    if (r > 0) {
      done += size_t(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait(POLLOUT, write_timeout_)) return -1;
    } else {
      return -1;
    }
  }
  return ssize_t(done);
}

bool Connection::is_readable() const {
  return buffer_off_ < buffer_.size() || (ssl_ && SSL_pending(ssl_) > 0) ||
         wait(POLLIN, read_timeout_);
}

bool Connection::is_writable() const {
  // httplib asks before each chunk it streams: a connection the client closed is not writable.
  pollfd p{fd_, POLLOUT, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) return false;
  return wait(POLLOUT, write_timeout_);
}

void Connection::get_remote_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address_of(a, ip, port);
}

void Connection::get_local_ip_and_port(std::string& ip, int& port) const {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address_of(a, ip, port);
}

}  // namespace ep::http
