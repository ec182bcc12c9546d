// The services' connections (http/connection_loop.h) on real loopback sockets: idle and
// trickling clients cannot take the workers, the connection limit answers 503, a slow reader
// gets the whole answer, pipelined requests are all answered, and stop() cuts a stream.
#include "http/connection_loop.h"
#include "http/response.h"
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace ep {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

class Serving {
 public:
  explicit Serving(http::HttpServer& s) : server_(s), port_(s.bind("127.0.0.1", 0)) {
    thread_ = std::thread([this] { server_.serve(); });
  }
  ~Serving() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  http::HttpServer& server_;
  int port_;
  std::thread thread_;
};

// A raw TCP connection to the service (-1 if it could not connect).
int connect_to(int port, int receive_buffer = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (receive_buffer > 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& s) {
  ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size()));
}

// Everything the server sends until it closes the connection or `limit` passes.
std::string read_until_closed(int fd, std::chrono::milliseconds limit) {
  std::string got;
  const auto until = Clock::now() + limit;
  char buf[65536];
  while (Clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, size_t(n));
  }
  return got;
}

// The connection was closed by the server within `limit`.
bool closed_within(int fd, std::chrono::milliseconds limit) {
  const auto until = Clock::now() + limit;
  char buf[4096];
  while (Clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    if (::recv(fd, buf, sizeof buf, 0) <= 0) return true;
  }
  return false;
}

void add_ping(http::HttpServer& s) {
  s.routes().Get("/ping", [](const httplib::Request& q, httplib::Response& r) {
    http::send_json(r, {{"n", q.get_param_value("n")}});
  });
}

TEST(ConnectionLoop, AThousandIdleConnectionsDoNotDelayARealRequest) {
  http::raise_open_files_limit();  // both ends of 1000 connections live in this process
  http::HttpLimits limits;         // the edge's: 8 workers
  limits.keep_alive_timeout = 30s;
  http::HttpServer server(limits);
  add_ping(server);
  Serving serving(server);
  std::vector<int> idle;
  for (int i = 0; i < 1000; ++i) {
    const int fd = connect_to(serving.port());
    ASSERT_GE(fd, 0) << "connection " << i;
    // Some say nothing, some begin a request and stall: neither holds a worker.
    if (i % 10 == 0) send_all(fd, "GET /ping HTTP/1.1\r\nHost: x\r\n");
    idle.push_back(fd);
  }
  const auto start = Clock::now();
  httplib::Client c("127.0.0.1", serving.port());
  c.set_read_timeout(5, 0);
  const auto r = c.Get("/ping?n=7");
  const auto took = Clock::now() - start;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"7\""), std::string::npos) << r->body;
  EXPECT_LT(took, 1s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  EXPECT_GE(server.connection_stats().open.load(), 1000);
  for (const int fd : idle) ::close(fd);
}

TEST(ConnectionLoop, SilentConnectionsAreClosedAfterTheKeepAliveTimeout) {
  http::HttpLimits limits;
  limits.keep_alive_timeout = 1s;
  http::HttpServer server(limits);
  add_ping(server);
  Serving serving(server);
  const int silent = connect_to(serving.port());
  const int kept = connect_to(serving.port());
  send_all(kept, "GET /ping?n=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto start = Clock::now();
  EXPECT_TRUE(closed_within(silent, 3s));
  EXPECT_GE(Clock::now() - start, 900ms);
  // Answered, then idle: closed too after the same timeout.
  const std::string answer = read_until_closed(kept, 3s);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_GE(server.connection_stats().idle_closed_total.load(), 2);
  ::close(silent);
  ::close(kept);
}

TEST(ConnectionLoop, ARequestHeadTrickledInIsCutAtItsDeadline) {
  http::HttpLimits limits;
  // A head has the keep-alive timeout to arrive whole; the read timeout (5 s) between bytes
  // alone would never cut it.
  limits.keep_alive_timeout = 1s;
  http::HttpServer server(limits);
  add_ping(server);
  Serving serving(server);
  const int fd = connect_to(serving.port());
  const std::string request = "GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  const auto start = Clock::now();
  bool cut = false;
  for (int i = 0; i < 40 && !cut; ++i) {
    const char byte = i < int(request.size()) ? request[size_t(i)] : 'a';
    if (::send(fd, &byte, 1, MSG_NOSIGNAL) != 1) cut = true;
    cut = cut || closed_within(fd, 200ms);
  }
  EXPECT_TRUE(cut);
  EXPECT_LT(Clock::now() - start, 3s);
  ::close(fd);
  // The service still answers others.
  httplib::Client c("127.0.0.1", serving.port());
  const auto r = c.Get("/ping?n=2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST(ConnectionLoop, ConnectionsPastTheLimitAreAnswered503) {
  http::HttpLimits limits;
  limits.max_connections = 10;
  limits.keep_alive_timeout = 30s;
  http::HttpServer server(limits);
  add_ping(server);
  Serving serving(server);
  std::vector<int> held;
  for (int i = 0; i < 10; ++i) held.push_back(connect_to(serving.port()));
  // Wait until the loop has accepted all ten.
  const auto until = Clock::now() + 5s;
  while (server.connection_stats().open.load() < 10 && Clock::now() < until)
    std::this_thread::sleep_for(5ms);
  const int extra = connect_to(serving.port());
  send_all(extra, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string answer = read_until_closed(extra, 3s);
  EXPECT_EQ(answer.rfind("HTTP/1.1 503", 0), 0u) << answer;
  EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
  const auto body = nlohmann::json::parse(answer.substr(answer.find("\r\n\r\n") + 4));
  EXPECT_EQ(body.at("error").at("code"), 503);
  EXPECT_NE(body.at("error").at("message").get<std::string>().find("10 connections"),
            std::string::npos);
  EXPECT_EQ(server.connection_stats().refused_total.load(), 1);
  ::close(extra);
  // A held connection is still served, and one freed makes room again.
  send_all(held[0], "GET /ping?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(read_until_closed(held[0], 3s).rfind("HTTP/1.1 200", 0), 0u);
  for (const int fd : held) ::close(fd);
}

TEST(ConnectionLoop, ASlowReaderReceivesTheWholeStream) {
  http::HttpLimits limits;
  limits.write_timeout = 1s;  // far shorter than the whole transfer
  http::HttpServer server(limits);
  constexpr size_t kChunk = 64 * 1024, kChunks = 24;  // 1.5 MiB
  server.routes().Get("/stream", [](const httplib::Request&, httplib::Response& r) {
    r.set_chunked_content_provider("application/octet-stream",
                                   [sent = size_t(0)](size_t, httplib::DataSink& sink) mutable {
                                     if (sent == kChunks) {
                                       sink.done();
                                       return true;
                                     }
                                     const std::string chunk(kChunk, char('a' + sent++ % 26));
                                     return sink.write(chunk.data(), chunk.size());
                                   });
  });
  Serving serving(server);
  const int fd = connect_to(serving.port(), 16 * 1024);
  send_all(fd, "GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  // About 400 KB/s: the transfer takes about 4 s, each wait of the server well under 1 s.
  std::string got;
  char buf[16 * 1024];
  const auto start = Clock::now();
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, size_t(n));
    std::this_thread::sleep_for(40ms);
  }
  EXPECT_GT(Clock::now() - start, 2s);
  EXPECT_GT(got.size(), kChunk * kChunks);
  EXPECT_NE(got.find("0\r\n\r\n", got.size() - 5), std::string::npos) << "stream cut short";
  ::close(fd);
}

TEST(ConnectionLoop, PipelinedRequestsAreAllAnsweredInOrder) {
  http::HttpServer server;
  add_ping(server);
  Serving serving(server);
  const int fd = connect_to(serving.port());
  send_all(fd,
           "GET /ping?n=a HTTP/1.1\r\nHost: x\r\n\r\nGET /ping?n=b HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /ping?n=c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string answer = read_until_closed(fd, 5s);
  const size_t a = answer.find("\"a\""), b = answer.find("\"b\""), c = answer.find("\"c\"");
  ASSERT_NE(c, std::string::npos) << answer;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  ::close(fd);
}

TEST(ConnectionLoop, StopCutsAStreamInProgress) {
  http::HttpServer server;
  server.routes().Get("/forever", [](const httplib::Request&, httplib::Response& r) {
    r.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
      std::this_thread::sleep_for(10ms);
      return sink.write("x", 1);
    });
  });
  const int port = server.bind("127.0.0.1", 0);
  std::thread serving([&] { server.serve(); });
  const int fd = connect_to(port);
  send_all(fd, "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
  char buf[256];
  ASSERT_GT(::recv(fd, buf, sizeof buf, 0), 0);
  const auto start = Clock::now();
  server.stop();
  serving.join();
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_TRUE(closed_within(fd, 2s));
  ::close(fd);
}

}  // namespace
}  // namespace ep
