// The limits of a request on a real cloud process: a chunked body over the size limit (413), counts
// and token ids past 2^32 (400, not taken modulo 2^32), bytes that are not UTF-8 (400), a chat
// template nobody knows at registration (400): each an OpenAI-shaped error, and the cloud keeps
// serving.
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace ep {
namespace {

using json = nlohmann::json;

// The status of an error answer, checking the OpenAI error shape.
int error_status(const httplib::Result& r) {
  if (!r) return 0;
  const json body = json::parse(r->body);
  EXPECT_TRUE(body["error"]["message"].is_string()) << r->body;
  EXPECT_EQ(body["error"]["code"], r->status) << r->body;
  EXPECT_TRUE(json::parse(r->body).dump().size() > 0);  // the body itself is valid UTF-8 JSON
  return r->status;
}

// Sends `request` on a fresh connection and returns what comes back within a second.
std::string raw_exchange(const std::string& url, const std::string& request) {
  const int port = std::stoi(url.substr(url.rfind(':') + 1));
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string got;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, size_t(n));
    const size_t head = got.find("\r\n\r\n");
    const size_t len_at = got.find("Content-Length: ");
    if (head != std::string::npos && len_at != std::string::npos &&
        got.size() >= head + 4 + std::stoul(got.substr(len_at + 16))) {
      break;
    }
  }
  ::close(fd);
  return got;
}

TEST(CloudLimits, EachLimitAnswersItsStatusAndTheCloudKeepsServing) {
  test::Process cloud({"cloud", "--insecure-http", "--model", test::default_model().string(),
                       "--listen", "127.0.0.1:0"});
  const std::string url = test::start_cloud(cloud);
  httplib::Client c(url);
  c.set_read_timeout(std::chrono::seconds(30));

  // A chunked body (no Content-Length) is refused from its headers (411), before a byte of it
  // is read; the same size with its length is over the limit (413).
  const std::string answer = raw_exchange(url,
                                          "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n100000\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 411 ", 0), 0u) << answer;
  const std::string refusal = answer.substr(answer.find("\r\n\r\n") + 4);
  EXPECT_EQ(json::parse(refusal)["error"]["code"], 411) << refusal;
  EXPECT_NE(refusal.find("send Content-Length"), std::string::npos) << refusal;
  EXPECT_EQ(error_status(c.Post("/v1/completions", std::string(17 << 20, 'a'), "text/plain")), 413);

  const auto post = [&](const std::string& path, const std::string& body) {
    return error_status(c.Post(path, body, "application/json"));
  };
  EXPECT_EQ(post("/v1/completions", R"({"prompt": "hi", "max_tokens": 4294967297})"), 400);
  EXPECT_EQ(post("/v1/completions", R"({"prompt": "hi", "max_tokens": -1})"), 400);
  EXPECT_EQ(post("/v1/completions", R"({"prompt": "hi", "max_tokens": 1e30})"), 400);
  EXPECT_EQ(post("/v1/chat/completions",
                 R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4294967297})"),
            400);
  EXPECT_EQ(post("/v1/completions", R"({"prompt": [1, 4294967297], "max_tokens": 1})"), 400);
  EXPECT_EQ(post("/v1/completions", R"({"prompt": "hi", "top_k": 18446744073709551615})"), 400);
  EXPECT_EQ(post("/v1/completions", "{\"prompt\": \"h\xff\xfei\", \"max_tokens\": 1}"), 400);
  EXPECT_EQ(post("/v1/chat/completions",
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"\xc3\x28\"}]}"),
            400);

  const auto put = [&](const std::string& body) {
    return error_status(c.Put("/v1/cloud-prompts/p", body, "application/json"));
  };
  EXPECT_EQ(put(R"({"text": "You help.", "chat_template": "nonesuch"})"), 400);
  EXPECT_EQ(put(R"({"tokens": [1, 4294967297]})"), 400);
  EXPECT_EQ(put("{\"text\": \"caf\xe9\"}"), 400);
  EXPECT_EQ(c.Get("/v1/cloud-prompts/p")->status, 404);  // none of them was registered

  // Still serving: a valid request completes with exactly the tokens it asked for.
  auto ok = c.Post("/v1/completions", R"({"prompt": "hi", "max_tokens": 3, "ignore_eos": true})",
                   "application/json");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(json::parse(ok->body)["usage"]["completion_tokens"], 3);
  EXPECT_EQ(c.Get("/health")->status, 200);
}

}  // namespace
}  // namespace ep
