// TLS on both services with real processes on loopback (certificates made by the test): a chat
// completion through an HTTPS edge whose KV comes from an HTTPS cloud; the edge refusing a cloud
// whose certificate another CA signed; a plain-HTTP client refused by a TLS server; mutual TLS;
// and a service that refuses to start without TLS unless told --insecure-http.
#include "http/test_pki.h"
#include "protocol/cloud_client.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ep {
namespace {

using json = nlohmann::json;

const std::string kSystem = "You are the assistant of a small bank. Answer briefly.";

std::string url_of(test::Process& p, const std::string& scheme) {
  const std::string line = p.wait_for_line("listening on " + scheme + "://");
  const size_t at = line.find(scheme + "://");
  if (at == std::string::npos) throw std::runtime_error("did not start: " + p.err());
  return line.substr(at, line.find(' ', at) - at);
}

std::vector<std::string> tls_cloud_args(const test::TestPki& pki) {
  return {"cloud",         "--model",     test::default_model().string(),
          "--listen",      "127.0.0.1:0", "--tls-cert",
          pki.server_cert, "--tls-key",   pki.server_key};
}

CloudConnection trusting(const std::string& url, const std::filesystem::path& ca) {
  CloudConnection c;
  c.base_url = url;
  c.tls.ca_file = ca;
  return c;
}

class Tls : public ::testing::Test {
 protected:
  test::ScratchDir dir;
  test::TestPki pki = test::make_test_pki(dir.path());
};

TEST_F(Tls, CompletionThroughHttpsEdgeFromHttpsCloud) {
  test::Process cloud(tls_cloud_args(pki));
  const std::string cloud_url = url_of(cloud, "https");
  CloudClient(trusting(cloud_url, pki.ca)).put_prompt("bank", {kSystem, std::nullopt, "chatml"});

  test::Process edge({"edge", "--model", test::default_model().string(), "--cloud", cloud_url,
                      "--cloud-ca", pki.ca, "--listen", "127.0.0.1:0", "--tls-cert",
                      pki.server_cert, "--tls-key", pki.server_key});
  const std::string edge_url = url_of(edge, "https");
  httplib::Client c(edge_url);
  c.set_ca_cert_path(pki.ca.c_str());
  c.enable_server_certificate_verification(true);
  c.set_read_timeout(std::chrono::seconds(60));
  const json req = {{"cloud_prompt", "bank"},
                    {"max_tokens", 4},
                    {"temperature", 0},
                    {"messages", {{{"role", "user"}, {"content", "my balance?"}}}}};
  auto r = c.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error()) << "\n" << edge.err();
  ASSERT_EQ(r->status, 200) << r->body;
  const json body = json::parse(r->body);
  EXPECT_GT(body["usage"]["cloud_tokens"].get<int>(), 0);
  EXPECT_EQ(body["usage"]["completion_tokens"].get<int>(), 4);
}

TEST_F(Tls, EdgeRefusesCloudSignedByAnotherCa) {
  test::Process cloud(tls_cloud_args(pki));
  const std::string cloud_url = url_of(cloud, "https");
  CloudClient(trusting(cloud_url, pki.ca)).put_prompt("bank", {kSystem, std::nullopt, "chatml"});
  // The typed client: a clear error naming the CA it trusted.
  try {
    CloudClient(trusting(cloud_url, pki.other_ca)).prompt("bank");
    ADD_FAILURE() << "a certificate of another CA was accepted";
  } catch (const CloudError& e) {
    EXPECT_EQ(e.failure(), CloudFailure::Unreachable);
    EXPECT_NE(std::string(e.what()).find("not signed by the CA in " + pki.other_ca.string()),
              std::string::npos)
        << e.what();
  }
  // An edge trusting the other CA answers 502 with that error, and no KV crossed.
  test::Process edge({"edge", "--model", test::default_model().string(), "--cloud", cloud_url,
                      "--cloud-ca", pki.other_ca, "--listen", "127.0.0.1:0", "--tls-cert",
                      pki.server_cert, "--tls-key", pki.server_key});
  httplib::Client c(url_of(edge, "https"));
  c.set_ca_cert_path(pki.ca.c_str());
  const json req = {{"cloud_prompt", "bank"},
                    {"max_tokens", 2},
                    {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto r = c.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 502) << r->body;
  EXPECT_NE(r->body.find("certificate is not trusted"), std::string::npos) << r->body;
  // The system roots do not know the test CA either.
  try {
    CloudClient(trusting(cloud_url, "")).prompt("bank");
    ADD_FAILURE() << "the test CA's certificate was accepted by the system roots";
  } catch (const CloudError& e) {
    EXPECT_NE(std::string(e.what()).find("not signed by a system root CA"), std::string::npos)
        << e.what();
  }
}

TEST_F(Tls, PlainHttpClientIsRefusedByTlsServer) {
  test::Process cloud(tls_cloud_args(pki));
  const std::string https_url = url_of(cloud, "https");
  const std::string http_url = "http://" + https_url.substr(std::string("https://").size());
  httplib::Client plain(http_url);
  plain.set_read_timeout(std::chrono::seconds(5));
  auto r = plain.Get("/health");
  EXPECT_FALSE(r && r->status == 200) << "plain HTTP was served by a TLS server";
  try {
    CloudClient(trusting(http_url, pki.ca)).prompts();
    ADD_FAILURE() << "a plain client listed a TLS cloud's prompts";
  } catch (const CloudError& e) {
    EXPECT_EQ(e.failure(), CloudFailure::Unreachable);
    EXPECT_NE(std::string(e.what()).find("https://"), std::string::npos) << e.what();
  }
  // The server keeps serving TLS clients.
  EXPECT_TRUE(CloudClient(trusting(https_url, pki.ca)).prompts().empty());
}

TEST_F(Tls, MutualTlsRequiresClientCertificate) {
  std::vector<std::string> args = tls_cloud_args(pki);
  args.insert(args.end(), {"--tls-client-ca", pki.ca.string()});
  test::Process cloud(args);
  const std::string url = url_of(cloud, "https");
  EXPECT_THROW(CloudClient(trusting(url, pki.ca)).prompts(), CloudError);
  CloudConnection with_cert = trusting(url, pki.ca);
  with_cert.tls.cert_file = pki.client_cert;
  with_cert.tls.key_file = pki.client_key;
  EXPECT_TRUE(CloudClient(with_cert).prompts().empty());
  // A certificate from another CA's realm is refused too: the server's own (not a client cert).
  CloudConnection wrong = trusting(url, pki.ca);
  wrong.tls.cert_file = pki.server_cert;  // signed by the CA but not for client use
  wrong.tls.key_file = pki.server_key;
  EXPECT_THROW(CloudClient(wrong).prompts(), CloudError);
}

TEST_F(Tls, ServiceWithoutTlsRefusesToStartUnlessInsecureHttp) {
  for (const char* service : {"cloud", "edge"}) {
    const auto r = test::run_cli(
        {service, "--model", test::default_model().string(), "--listen", "127.0.0.1:0"});
    EXPECT_EQ(r.exit_code, 1) << service;
    EXPECT_NE(r.err.find("refusing to serve without TLS"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--insecure-http"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const auto half = test::run_cli(
      {"cloud", "--model", test::default_model().string(), "--tls-cert", pki.server_cert.string()});
  EXPECT_EQ(half.exit_code, 1);
  EXPECT_NE(half.err.find("--tls-cert and --tls-key go together"), std::string::npos) << half.err;
  const auto bad = test::run_cli({"cloud", "--model", test::default_model().string(), "--tls-cert",
                                  pki.server_cert.string(), "--tls-key", pki.client_key.string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("cannot use TLS certificate"), std::string::npos) << bad.err;
  const auto plain_cloud = test::run_cli(
      {"edge", "--model", test::default_model().string(), "--cloud", "http://127.0.0.1:1",
       "--tls-cert", pki.server_cert.string(), "--tls-key", pki.server_key.string()});
  EXPECT_EQ(plain_cloud.exit_code, 1);
  EXPECT_NE(plain_cloud.err.find("plain HTTP to the cloud needs --insecure-http"),
            std::string::npos)
      << plain_cloud.err;

  test::Process plain({"cloud", "--model", test::default_model().string(), "--listen",
                       "127.0.0.1:0", "--insecure-http"});
  EXPECT_FALSE(url_of(plain, "http").empty());
  EXPECT_NE(plain.err().find("warning: serving plain HTTP"), std::string::npos) << plain.err();
}

}  // namespace
}  // namespace ep
