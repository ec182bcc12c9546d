// A cloud process under connection load, on real loopback sockets: a thousand idle connections
// do not delay a real request, a thousand edges fetching one prompt all get it from one
// prefill, and a reader that hangs up mid-stream is counted.
#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace ep {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

int port_of(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

int connect_to(int port, int receive_buffer = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && receive_buffer > 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The value of one sample line of /metrics ("name value"); -1 if absent.
double metric(const std::string& url, const std::string& name) {
  httplib::Client c(url);
  const auto r = c.Get("/metrics");
  if (!r) return -1;
  std::smatch m;
  if (!std::regex_search(r->body, m, std::regex("\n" + name + " ([0-9.e+]+)\n"))) return -1;
  return std::stod(m[1]);
}

std::vector<std::string> cloud_args() {
  return {"cloud",    "--insecure-http", "--model", test::default_model().string(),
          "--listen", "127.0.0.1:0"};
}

void put_prompt(
    const std::string& url, const std::string& id,
    const std::string& text = "You are a support agent for a bicycle shop. Answer briefly.") {
  httplib::Client c(url);
  const json body = {{"text", text}};
  const auto r = c.Put("/v1/cloud-prompts/" + id, body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
}

TEST(CloudConnections, AThousandIdleConnectionsThenARealRequestAnsweredInUnderASecond) {
  test::Process cloud(cloud_args());
  const std::string url = test::start_cloud(cloud);
  std::vector<int> idle;
  for (int i = 0; i < 1000; ++i) {
    const int fd = connect_to(port_of(url));
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  const auto start = Clock::now();
  put_prompt(url, "shop");
  httplib::Client c(url);
  const auto health = c.Get("/health");
  const auto took = Clock::now() - start;
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_LT(took, 1s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms";
  EXPECT_GE(metric(url, "edgeprompt_cloud_connections_open"), 1000);
  for (const int fd : idle) ::close(fd);
  EXPECT_EQ(cloud.stop(), 0);
}

TEST(CloudConnections, AThousandEdgesFetchingOnePromptAllGetItFromOnePrefill) {
  test::Process cloud(cloud_args());
  const std::string url = test::start_cloud(cloud);
  put_prompt(url, "shop");  // the fetches start while it prefills
  constexpr int kEdges = 1000;
  std::vector<std::string> got(kEdges);
  std::vector<int> status(kEdges, 0);
  std::vector<std::thread> edges;
  edges.reserve(kEdges);
  for (int i = 0; i < kEdges; ++i) {
    edges.emplace_back([&, i] {
      httplib::Client c(url);
      c.set_connection_timeout(10, 0);
      c.set_read_timeout(60, 0);
      const auto r = c.Get("/v1/cloud-prompts/shop/kv");
      status[size_t(i)] = r ? r->status : -1;
      if (r) got[size_t(i)] = r->body;
    });
  }
  for (auto& t : edges) t.join();
  int ok = 0;
  for (int i = 0; i < kEdges; ++i) {
    if (status[size_t(i)] == 200 && got[size_t(i)] == got[0]) ++ok;
  }
  EXPECT_EQ(ok, kEdges) << "status of the first: " << status[0];
  EXPECT_GT(got[0].size(), 1000u);
  EXPECT_EQ(metric(url, "edgeprompt_cloud_prefills_total"), 1);
  EXPECT_EQ(metric(url, "edgeprompt_cloud_streams_total"), kEdges);
  EXPECT_EQ(metric(url, "edgeprompt_cloud_streams_cut_total"), 0);
  EXPECT_EQ(cloud.stop(), 0);
}

TEST(CloudConnections, AReaderThatHangsUpMidStreamIsCounted) {
  test::Process cloud(cloud_args());
  const std::string url = test::start_cloud(cloud);
  // About 3 MB of KV, far more than a small receive window and the send buffer hold.
  std::string text;
  for (int i = 0; i < 60; ++i) text += "The shop sells and repairs bicycles. ";
  put_prompt(url, "long", text);
  {
    const int fd = connect_to(port_of(url), 4096);
    const std::string get = "GET /v1/cloud-prompts/long/kv HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(fd, get.data(), get.size(), MSG_NOSIGNAL), ssize_t(get.size()));
    char head[512];
    EXPECT_GT(::recv(fd, head, sizeof head, 0), 0);  // the stream has begun
    ::close(fd);                                     // and its reader is gone
  }
  const auto until = Clock::now() + 10s;
  while (metric(url, "edgeprompt_cloud_streams_cut_total") < 1 && Clock::now() < until)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(metric(url, "edgeprompt_cloud_streams_cut_total"), 1);
  EXPECT_EQ(metric(url, "edgeprompt_cloud_active_streams"), 0);
  EXPECT_EQ(cloud.stop(), 0);
}

TEST(CloudConnections, TheConnectionLimitsAreFlags) {
  std::vector<std::string> args = cloud_args();
  args.insert(args.end(), {"--max-connections", "3", "--keep-alive-s", "30"});
  test::Process cloud(args);
  const std::string url = test::start_cloud(cloud);
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) held.push_back(connect_to(port_of(url)));
  std::this_thread::sleep_for(200ms);  // accepted by now
  httplib::Client c(url);
  const auto r = c.Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_NE(r->body.find("3 connections open"), std::string::npos) << r->body;
  for (const int fd : held) ::close(fd);
  EXPECT_EQ(cloud.stop(), 0);
}

}  // namespace
}  // namespace ep
