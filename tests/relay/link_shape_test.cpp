// The emulated link of the relay: unit parsing, and bytes through a shaped relay arriving
// intact, no sooner than bandwidth and latency allow.
#include "relay/link_shape.h"
#include "core/error.h"
#include "relay/tcp_relay.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace ep {
namespace {

using namespace std::chrono;

TEST(LinkShape, ParsesRatesAndDelaysWithUnits) {
  EXPECT_DOUBLE_EQ(parse_bandwidth("50Mbit"), 50e6 / 8);
  EXPECT_DOUBLE_EQ(parse_bandwidth("1Gbit"), 1e9 / 8);
  EXPECT_DOUBLE_EQ(parse_bandwidth("64kbit"), 8000);
  EXPECT_DOUBLE_EQ(parse_bandwidth("12.5MB"), 12.5e6);
  EXPECT_DOUBLE_EQ(parse_bandwidth("800"), 100);  // bits/s, as tc reads a bare number
  EXPECT_EQ(parse_latency("20ms"), microseconds(20000));
  EXPECT_EQ(parse_latency("150us"), microseconds(150));
  EXPECT_EQ(parse_latency("0.5s"), microseconds(500000));
  EXPECT_EQ(parse_latency("0"), microseconds(0));
  for (const char* bad : {"", "fast", "0Mbit", "-5Mbit", "10Mbps", "nanMB"}) {
    EXPECT_THROW(parse_bandwidth(bad), Error) << bad;
  }
  for (const char* bad : {"", "20", "-1ms", "5 ms", "1h"})
    EXPECT_THROW(parse_latency(bad), Error) << bad;
  const LinkShape link{1e6, microseconds(0)};
  EXPECT_EQ(link.serialisation(500000), milliseconds(500));
}

// A server that sends `payload` to its first client and closes.
class OneShotServer {
 public:
  explicit OneShotServer(std::string payload) : payload_(std::move(payload)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 1);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      for (size_t at = 0; at < payload_.size();) {
        const ssize_t n = send(c, payload_.data() + at, payload_.size() - at, MSG_NOSIGNAL);
        if (n <= 0) break;
        at += size_t(n);
      }
      close(c);
    });
  }
  ~OneShotServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  std::string payload_;
  int fd_ = -1, port_ = 0;
  std::thread thread_;
};

struct Received {
  std::string bytes;
  duration<double> first_byte{}, all{};
};

Received fetch(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(uint16_t(port));
  const auto t0 = steady_clock::now();
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  Received r;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) {
    if (r.bytes.empty()) r.first_byte = steady_clock::now() - t0;
    r.bytes.append(buf, size_t(n));
  }
  r.all = steady_clock::now() - t0;
  close(fd);
  return r;
}

std::string payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 2654435761u) >> 13);
  return s;
}

TEST(LinkShape, RelayDeliversEverythingAtTheEmulatedRateAndDelay) {
  const std::string data = payload(600000);
  OneShotServer server(data);
  const LinkShape link{2e6, milliseconds(80)};  // 2 MB/s: 0.3 s of serialisation
  TcpRelay relay(server.port(), {}, "127.0.0.1", "127.0.0.1", 0, link);
  const Received r = fetch(relay.port());
  EXPECT_EQ(r.bytes, data);
  EXPECT_GE(r.first_byte, milliseconds(80));
  EXPECT_GE(r.all, milliseconds(80 + 300 - 10));
  EXPECT_LT(r.all, seconds(5));  // generous: a loaded CI machine
}

TEST(LinkShape, UnshapedRelayIsNotSlowedDown) {
  const std::string data = payload(600000);
  OneShotServer server(data);
  TcpRelay relay(server.port());
  const Received r = fetch(relay.port());
  EXPECT_EQ(r.bytes, data);
  EXPECT_LT(r.all, milliseconds(300));
}

}  // namespace
}  // namespace ep
