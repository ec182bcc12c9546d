// The request log (http/request_log.h) of a real cloud process with tenants: one JSON line a
// request in --log-file, with the id the client got as X-Request-Id, the tenant the token names,
// the route, status, bytes and time.
#include "http/auth.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ep {
namespace {

using json = nlohmann::json;

std::vector<json> lines_of(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

TEST(RequestLog, OneLineARequestWithIdTenantRouteStatusBytesAndTime) {
  test::ScratchDir dir;
  std::string hash;
  for (const uint8_t b : http::hash_token("acme-admin")) hash += fmt::format("{:02x}", b);
  test::write_file(dir / "auth", "acme admin " + hash + "\n");
  test::Process cloud({"cloud", "--insecure-http", "--model", test::default_model().string(),
                       "--listen", "127.0.0.1:0", "--auth-file", (dir / "auth").string(),
                       "--log-file", (dir / "requests.log").string()});
  const std::string url = test::start_cloud(cloud);
  httplib::Client c(url);
  const httplib::Headers admin = {{"Authorization", "Bearer acme-admin"}};
  const std::string body = json{{"text", "You help."}}.dump();
  auto put = c.Put("/v1/cloud-prompts/p", admin, body, "application/json");
  ASSERT_EQ(put->status, 201);
  auto anonymous = c.Get("/v1/cloud-prompts");
  ASSERT_EQ(anonymous->status, 401);
  auto missing = c.Get("/v1/cloud-prompts/nope", admin);
  ASSERT_EQ(missing->status, 404);

  // The line is written once the answer has gone out: wait for all three (bounded).
  std::vector<json> log;
  for (int i = 0; i < 200 && log.size() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    log = lines_of(test::read_file(dir / "requests.log"));
  }
  ASSERT_EQ(log.size(), 3u);
  // Lines are written as answers finish: found by the id each client got.
  const auto line_of = [&](const httplib::Result& r) {
    for (const json& l : log) {
      if (l["id"] == r->get_header_value("X-Request-Id")) return l;
    }
    ADD_FAILURE() << "no line for id " << r->get_header_value("X-Request-Id");
    return json::object();
  };
  const json p = line_of(put), a = line_of(anonymous), m = line_of(missing);
  EXPECT_EQ(p["tenant"], "acme");
  EXPECT_EQ(p["method"], "PUT");
  EXPECT_EQ(p["route"], "/v1/cloud-prompts/p");
  EXPECT_EQ(p["status"], 201);
  EXPECT_EQ(p["bytes_in"], body.size());
  EXPECT_EQ(p["bytes_out"], put->body.size());
  EXPECT_GE(p["ms"].get<double>(), 0.0);
  EXPECT_EQ(a["tenant"], "");
  EXPECT_EQ(a["status"], 401);
  EXPECT_EQ(m["tenant"], "acme");
  EXPECT_EQ(m["status"], 404);
  EXPECT_EQ(m["route"], "/v1/cloud-prompts/nope");
  EXPECT_NE(p["id"], a["id"]);
  // Nothing of the token itself is logged.
  EXPECT_EQ(test::read_file(dir / "requests.log").find("acme-admin"), std::string::npos);
}

}  // namespace
}  // namespace ep
