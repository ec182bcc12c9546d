// The services' HTTP server (http/server.h) on a real loopback socket: what a route's exceptions,
// an unknown path and an over-long body are answered with (the OpenAI error body), binding, and
// stopping.
#include "http/server.h"

#include "core/error.h"
#include "http/error.h"
#include "http/response.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace ep {
namespace {

using http::ErrorKind;
using json = nlohmann::json;

// An HttpServer serving on 127.0.0.1 (any free port) in a thread of its own; stopped and joined
// when the object dies.
class RunningServer {
 public:
  explicit RunningServer(http::HttpServer& server) : server_(server) {
    port_ = server_.bind("127.0.0.1", 0);
    thread_ = std::thread([this] { server_.serve(); });
  }
  ~RunningServer() {
    server_.stop();
    thread_.join();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  int port() const { return port_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(10, 0);
    return c;
  }

 private:
  http::HttpServer& server_;
  int port_ = 0;
  std::thread thread_;
};

// The "error" object of an OpenAI-shaped error body, checked for its status.
json error_of(const httplib::Result& r, int status) {
  EXPECT_TRUE(r);
  if (!r) return {};
  EXPECT_EQ(r->status, status) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const json body = json::parse(r->body);
  EXPECT_EQ(body.size(), 1u) << r->body;
  const json e = body.at("error");
  EXPECT_EQ(e.at("code"), status);
  EXPECT_TRUE(e.at("param").is_null());
  return e;
}

TEST(HttpServer, BindsAnyFreePortServesAndStops) {
  http::HttpServer server;
  server.routes().Get("/ping", [](const httplib::Request&, httplib::Response& r) {
    http::send_json(r, {{"pong", true}});
  });
  int port = 0;
  {
    RunningServer running(server);
    port = running.port();
    EXPECT_GT(port, 0);
    auto r = running.client().Get("/ping");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(json::parse(r->body), (json{{"pong", true}}));
  }  // stop() made serve() return: the thread joined
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(1, 0);
  EXPECT_FALSE(after.Get("/ping"));  // nothing listens there any more
}

TEST(HttpServer, HttpErrorOfARouteIsAnsweredWithItsStatusAndMessage) {
  http::HttpServer server;
  server.routes().Get("/prompts/missing", [](const httplib::Request&, httplib::Response&) {
    throw http::HttpError(ErrorKind::NotFound, "unknown cloud prompt 'missing'");
  });
  server.routes().Put("/locked", [](const httplib::Request&, httplib::Response&) {
    http::fail(ErrorKind::Unauthorized, "missing or wrong admin token");
  });
  RunningServer running(server);
  auto client = running.client();

  const json e = error_of(client.Get("/prompts/missing"), 404);
  EXPECT_EQ(e.at("message"), "unknown cloud prompt 'missing'");
  EXPECT_EQ(e.at("type"), "not_found_error");

  const json u = error_of(client.Put("/locked", "{}", "application/json"), 401);
  EXPECT_EQ(u.at("message"), "missing or wrong admin token");
  EXPECT_EQ(u.at("type"), "authentication_error");
}

TEST(HttpServer, AnyOtherExceptionIsAnInternalError) {
  http::HttpServer server;
  server.routes().Get("/boom", [](const httplib::Request&, httplib::Response&) {
    throw std::runtime_error("the engine fell over");
  });
  server.routes().Get("/ep-error",
                      [](const httplib::Request&, httplib::Response&) { fail("plain ep::Error"); });
  server.routes().Get("/int", [](const httplib::Request&, httplib::Response&) { throw 42; });
  RunningServer running(server);
  auto client = running.client();

  const json e = error_of(client.Get("/boom"), 500);
  EXPECT_EQ(e.at("message"), "the engine fell over");
  EXPECT_EQ(e.at("type"), "server_error");
  EXPECT_EQ(error_of(client.Get("/ep-error"), 500).at("message"), "plain ep::Error");
  EXPECT_EQ(error_of(client.Get("/int"), 500).at("message"), "unknown failure");

  // The server goes on serving after each of them.
  EXPECT_EQ(error_of(client.Get("/boom"), 500).at("message"), "the engine fell over");
}

TEST(HttpServer, UnknownPathIsA404InTheSameShape) {
  http::HttpServer server;
  server.routes().Get("/known", [](const httplib::Request&, httplib::Response& r) {
    http::send_json(r, json::object());
  });
  RunningServer running(server);
  auto client = running.client();

  const json e = error_of(client.Get("/v1/nothing/here"), 404);
  EXPECT_EQ(e.at("type"), "not_found_error");
  const std::string message = e.at("message").get<std::string>();
  EXPECT_NE(message.find("no such endpoint"), std::string::npos) << message;
  EXPECT_NE(message.find("/v1/nothing/here"), std::string::npos) << message;
  EXPECT_NE(message.find("GET"), std::string::npos) << message;

  // A known path with a method no route takes is not found either.
  const json d = error_of(client.Delete("/known"), 404);
  EXPECT_NE(d.at("message").get<std::string>().find("DELETE /known"), std::string::npos);
}

TEST(HttpServer, BodyOverTheLimitIsAnswered413) {
  http::HttpLimits limits;
  limits.max_body_bytes = 1024;
  http::HttpServer server(limits);
  EXPECT_EQ(server.limits().max_body_bytes, 1024u);
  server.routes().Post("/echo", [](const httplib::Request& q, httplib::Response& r) {
    http::send_json(r, {{"bytes", q.body.size()}});
  });
  RunningServer running(server);
  auto client = running.client();

  // At the limit: accepted.
  auto ok = client.Post("/echo", std::string(1024, 'a'), "text/plain");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(json::parse(ok->body).at("bytes"), 1024);

  // One byte over, and far over: 413 with a JSON error naming the limit.
  for (const size_t n : {size_t(1025), size_t(64) << 10}) {
    SCOPED_TRACE(n);
    const json e = error_of(client.Post("/echo", std::string(n, 'b'), "text/plain"), 413);
    EXPECT_EQ(e.at("type"), "invalid_request_error");
    const std::string message = e.at("message").get<std::string>();
    EXPECT_NE(message.find("1024 bytes"), std::string::npos) << message;
    EXPECT_NE(message.find("POST /echo"), std::string::npos) << message;
  }
}

TEST(HttpServer, BindingAPortInUseThrowsNamingIt) {
  // A plain listening socket (no SO_REUSEPORT) holds the port.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  http::HttpServer server;
  try {
    server.bind("127.0.0.1", port);
    ADD_FAILURE() << "bound port " << port << " although it is in use";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos)
        << e.what();
  }
  ::close(fd);
}

TEST(HttpServer, BindingAnAddressThatIsNotLocalThrows) {
  http::HttpServer server;
  EXPECT_THROW(server.bind("192.0.2.1", 0), Error);  // TEST-NET-1: never a local address
  EXPECT_THROW(server.bind("192.0.2.1", 8080), Error);
}

TEST(HttpServer, ServesConcurrentRequestsOnItsWorkerThreads) {
  http::HttpLimits limits;
  limits.worker_threads = 4;
  http::HttpServer server(limits);
  server.routes().Get("/n", [](const httplib::Request& q, httplib::Response& r) {
    http::send_json(r, {{"n", q.get_param_value("n")}});
  });
  RunningServer running(server);
  std::vector<std::thread> clients;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      auto c = running.client();
      for (int i = 0; i < 25; ++i) {
        const std::string n = std::to_string(t * 100 + i);
        auto r = c.Get("/n?n=" + n);
        if (r && r->status == 200 && json::parse(r->body).at("n") == n) ++ok[size_t(t)];
      }
    });
  }
  for (std::thread& c : clients) c.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[size_t(t)], 25) << t;
}

}  // namespace
}  // namespace ep
