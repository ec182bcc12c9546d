// Tenants and scoped tokens on a real cloud (and an edge) process: each tenant lists, reads and
// fetches only its own prompts, another tenant's prompt answers exactly like one never
// registered, an edge token cannot register or delete, a client token only completes, and a
// missing or unknown token is 401 — every refusal an OpenAI-shaped error.
#include "http/auth.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace ep {
namespace {

using json = nlohmann::json;

std::string hex(const http::TokenHash& h) {
  std::string out;
  for (const uint8_t b : h) out += fmt::format("{:02x}", b);
  return out;
}

std::string url_in(const std::string& line) {
  const size_t at = line.find("http://");
  if (at == std::string::npos) throw std::runtime_error("no URL in: " + line);
  return line.substr(at, line.find(' ', at) - at);
}

httplib::Headers bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// The error body's status and type, checking its OpenAI shape.
std::pair<int, std::string> error_of(const httplib::Result& r) {
  if (!r) return {0, "no answer"};
  const json body = json::parse(r->body);
  EXPECT_TRUE(body["error"]["message"].is_string()) << r->body;
  EXPECT_EQ(body["error"]["code"], r->status) << r->body;
  return {r->status, body["error"]["type"].get<std::string>()};
}

class CloudTenants : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_file(dir / "auth",
                     "# tenant role sha256\n"
                     "acme admin " +
                         hex(http::hash_token("acme-admin")) + "\n" + "acme edge " +
                         hex(http::hash_token("acme-edge")) + "\n" + "acme client " +
                         hex(http::hash_token("acme-client")) + "\n" + "globex admin " +
                         hex(http::hash_token("globex-admin")) + "\n");
    cloud = std::make_unique<test::Process>(std::vector<std::string>{
        "cloud", "--insecure-http", "--model", test::default_model().string(), "--listen",
        "127.0.0.1:0", "--auth-file", (dir / "auth").string()});
    url = test::start_cloud(*cloud);
  }
  httplib::Result put(const std::string& token, const std::string& id, const std::string& text) {
    httplib::Client c(url);
    return c.Put("/v1/cloud-prompts/" + id, bearer(token), json{{"text", text}}.dump(),
                 "application/json");
  }
  httplib::Result get(const std::string& token, const std::string& path) {
    httplib::Client c(url);
    return c.Get(path, bearer(token));
  }

  test::ScratchDir dir;
  std::unique_ptr<test::Process> cloud;
  std::string url;
};

TEST_F(CloudTenants, EachTenantSeesOnlyItsOwnPrompts) {
  ASSERT_EQ(put("acme-admin", "support", "You are Acme's support desk.")->status, 201);
  ASSERT_EQ(put("acme-admin", "acme-only", "Acme internal.")->status, 201);
  ASSERT_EQ(put("globex-admin", "support", "You are the Globex help line, be brief.")->status, 201);

  const json acme = json::parse(get("acme-edge", "/v1/cloud-prompts")->body);
  const json globex = json::parse(get("globex-admin", "/v1/cloud-prompts")->body);
  ASSERT_EQ(acme["data"].size(), 2u);
  ASSERT_EQ(globex["data"].size(), 1u);
  EXPECT_EQ(globex["data"][0]["id"], "support");
  const json a = json::parse(get("acme-edge", "/v1/cloud-prompts/support")->body);
  const json g = json::parse(get("globex-admin", "/v1/cloud-prompts/support")->body);
  EXPECT_NE(a["n_tokens"], g["n_tokens"]);  // two prompts under one id

  // Another tenant's prompt is answered exactly like a prompt nobody registered: no probe tells
  // them apart (not the status, not the message's form).
  const auto other = get("globex-admin", "/v1/cloud-prompts/acme-only");
  const auto none = get("globex-admin", "/v1/cloud-prompts/nobody-has");
  EXPECT_EQ(error_of(other), error_of(none));
  EXPECT_EQ(json::parse(other->body)["error"]["message"], "unknown cloud prompt 'acme-only'");
  EXPECT_EQ(get("globex-admin", "/v1/cloud-prompts/acme-only/kv")->status, 404);
  EXPECT_EQ(get("acme-edge", "/v1/cloud-prompts/acme-only/kv")->status, 200);
  httplib::Client c(url);
  EXPECT_EQ(c.Delete("/v1/cloud-prompts/acme-only", bearer("globex-admin"))->status, 404);
  EXPECT_EQ(get("acme-admin", "/v1/cloud-prompts/acme-only")->status, 200);  // still there
  // A completion naming another tenant's cloud prompt is the same 404.
  const json req = {{"cloud_prompt", "acme-only"},
                    {"max_tokens", 2},
                    {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  EXPECT_EQ(error_of(c.Post("/v1/chat/completions", bearer("globex-admin"), req.dump(),
                            "application/json")),
            std::make_pair(404, std::string("not_found_error")));
}

TEST_F(CloudTenants, RolesAndMissingTokens) {
  ASSERT_EQ(put("acme-admin", "support", "You are Acme's support desk.")->status, 201);
  httplib::Client c(url);
  // An edge token reads but cannot write.
  EXPECT_EQ(error_of(put("acme-edge", "support", "Replaced by an edge.")).first, 403);
  EXPECT_EQ(error_of(c.Delete("/v1/cloud-prompts/support", bearer("acme-edge"))).first, 403);
  // A client token only completes.
  EXPECT_EQ(error_of(get("acme-client", "/v1/cloud-prompts")).first, 403);
  EXPECT_EQ(error_of(get("acme-client", "/v1/cloud-prompts/support/kv")).first, 403);
  EXPECT_EQ(error_of(put("acme-client", "x", "y")).first, 403);
  const json req = {{"cloud_prompt", "support"},
                    {"max_tokens", 2},
                    {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto done = c.Post("/v1/chat/completions", bearer("acme-client"), req.dump(), "application/json");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, 200) << done->body;
  // No token, an unknown one, or not a bearer token: 401, on every route but /health.
  EXPECT_EQ(error_of(c.Get("/v1/cloud-prompts")).first, 401);
  EXPECT_EQ(error_of(get("acme-admin2", "/v1/cloud-prompts")).first, 401);
  EXPECT_EQ(error_of(c.Get("/v1/cloud-prompts", {{"Authorization", "acme-admin"}})).first, 401);
  EXPECT_EQ(error_of(c.Post("/v1/chat/completions", req.dump(), "application/json")).first, 401);
  EXPECT_EQ(error_of(c.Get("/metrics", bearer("acme-edge"))).first, 403);
  EXPECT_EQ(get("acme-admin", "/metrics")->status, 200);
  EXPECT_EQ(c.Get("/health")->status, 200);
}

TEST_F(CloudTenants, EdgeFetchesWithItsTokenFromAFile) {
  ASSERT_EQ(put("acme-admin", "support", "You are Acme's support desk.")->status, 201);
  test::write_file(dir / "edge-token", "acme-edge\n");
  test::Process edge({"edge", "--insecure-http", "--model", test::default_model().string(),
                      "--cloud", url, "--cloud-token-file", (dir / "edge-token").string(),
                      "--listen", "127.0.0.1:0"});
  const std::string edge_url = url_in(edge.wait_for_line("listening on http://"));
  httplib::Client c(edge_url);
  c.set_read_timeout(std::chrono::seconds(60));
  const json req = {{"cloud_prompt", "support"},
                    {"max_tokens", 2},
                    {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto r = c.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_GT(json::parse(r->body)["usage"]["cloud_tokens"].get<int>(), 0);

  // An edge without a token is refused by the cloud: a 502 that says why.
  test::Process anonymous({"edge", "--insecure-http", "--model", test::default_model().string(),
                           "--cloud", url, "--listen", "127.0.0.1:0"});
  httplib::Client c2(url_in(anonymous.wait_for_line("listening on http://")));
  auto refused = c2.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 502) << refused->body;
  EXPECT_NE(refused->body.find("401"), std::string::npos) << refused->body;
}

TEST_F(CloudTenants, EachTenantHasItsOwnRequestRate) {
  // A second cloud with a rate of 1 request a second and a burst of 2, per tenant.
  test::Process limited({"cloud", "--insecure-http", "--model", test::default_model().string(),
                         "--listen", "127.0.0.1:0", "--auth-file", (dir / "auth").string(),
                         "--tenant-rate", "1", "--tenant-burst", "2"});
  httplib::Client c(test::start_cloud(limited));
  EXPECT_EQ(c.Get("/v1/cloud-prompts", bearer("acme-edge"))->status, 200);
  EXPECT_EQ(c.Get("/v1/cloud-prompts", bearer("acme-admin"))->status, 200);  // one tenant
  auto over = c.Get("/v1/cloud-prompts", bearer("acme-edge"));
  ASSERT_TRUE(over);
  EXPECT_EQ(error_of(over), std::make_pair(429, std::string("rate_limit_error")));
  ASSERT_TRUE(over->has_header("Retry-After"));
  const int wait = std::stoi(over->get_header_value("Retry-After"));
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 1);
  EXPECT_EQ(over->get_header_value_count("Retry-After"), 1u);
  // Another tenant is not slowed; /health is not counted.
  EXPECT_EQ(c.Get("/v1/cloud-prompts", bearer("globex-admin"))->status, 200);
  EXPECT_EQ(c.Get("/health")->status, 200);
  // After the wait the tenant is served again.
  std::this_thread::sleep_for(std::chrono::seconds(wait));
  EXPECT_EQ(c.Get("/v1/cloud-prompts", bearer("acme-edge"))->status, 200);
}

TEST_F(CloudTenants, TokensOnTheCommandLineAreRefused) {
  const auto r = test::run_cli({"cloud", "--insecure-http", "--model",
                                test::default_model().string(), "--admin-token", "s3cret"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("visible to every user"), std::string::npos) << r.err;
  test::write_file(dir / "bad-auth", "acme boss 1234\n");
  const auto bad =
      test::run_cli({"cloud", "--insecure-http", "--model", test::default_model().string(),
                     "--auth-file", (dir / "bad-auth").string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("line 1: role must be admin, edge or client"), std::string::npos)
      << bad.err;
}

}  // namespace
}  // namespace ep
