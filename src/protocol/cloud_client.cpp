#include "protocol/cloud_client.h"

#include "http/response.h"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace ep {
namespace {

using json = nlohmann::json;

// The answer's JSON, or a CloudError of the failure it stands for.
json expect_json(const httplib::Result& r, const CloudConnection& c, int expected_status,
                 const std::string& what) {
  if (!r) {
    throw CloudError(CloudFailure::Unreachable, describe_connection_error(c, r.error()));
  }
  if (r->status != expected_status && !(expected_status == 201 && r->status == 200)) {
    throw CloudError(cloud_failure_of_status(r->status),
                     fmt::format("cloud at {} answered {} to {}: {}", c.base_url, r->status, what,
                                 http::error_message_of(r->body)),
                     r->status);
  }
  try {
    return json::parse(r->body);
  } catch (const std::exception& e) {
    throw CloudError(
        CloudFailure::Corrupt,
        fmt::format("cloud at {} sent malformed JSON for {}: {}", c.base_url, what, e.what()));
  }
}

CloudPromptInfo prompt_info(const json& j, const CloudConnection& c) {
  try {
    CloudPromptInfo p;
    p.id = j.at("id").get<std::string>();
    p.version = j.at("version").get<uint64_t>();
    p.n_tokens = j.value("n_tokens", uint64_t(0));
    p.fingerprint = j.at("fingerprint").get<std::string>();
    p.chat_template = j.value("chat_template", std::string("none"));
    p.state = j.value("state", std::string());
    p.kv_bytes = j.value("kv_bytes", uint64_t(0));
    return p;
  } catch (const std::exception& e) {
    throw CloudError(
        CloudFailure::Corrupt,
        fmt::format("cloud at {} sent malformed prompt metadata: {}", c.base_url, e.what()));
  }
}

}  // namespace

std::unique_ptr<httplib::Client> open_cloud_client(const CloudConnection& c) {
  const bool https = c.base_url.rfind("https://", 0) == 0;
  if (!https && c.base_url.rfind("http://", 0) != 0) {
    throw CloudError(
        CloudFailure::Unreachable,
        fmt::format("cloud URL '{}' is not https://HOST:PORT (or http://)", c.base_url));
  }
  auto client = https && !c.tls.cert_file.empty()
                    ? std::make_unique<httplib::Client>(c.base_url, c.tls.cert_file, c.tls.key_file)
                    : std::make_unique<httplib::Client>(c.base_url);
  if (!client->is_valid()) {
    throw CloudError(
        CloudFailure::Unreachable,
        fmt::format("cannot open a client for {}{}", c.base_url,
                    c.tls.cert_file.empty() ? "" : " with client certificate " + c.tls.cert_file));
  }
  if (https) {
    client->enable_server_certificate_verification(true);
    if (!c.tls.ca_file.empty()) client->set_ca_cert_path(c.tls.ca_file.c_str());
  }
  client->set_connection_timeout(c.connect_timeout);
  client->set_read_timeout(c.read_timeout);
  if (!c.admin_token.empty()) client->set_bearer_token_auth(c.admin_token);
  return client;
}

std::string describe_connection_error(const CloudConnection& c, httplib::Error error) {
  std::string why;
  switch (error) {
    case httplib::Error::SSLServerVerification:
      why =
          fmt::format("TLS: the cloud's certificate is not trusted ({}) or does not name the host",
                      c.tls.ca_file.empty() ? "not signed by a system root CA"
                                            : "not signed by the CA in " + c.tls.ca_file);
      break;
    case httplib::Error::SSLConnection:
      why = "TLS handshake failed (not a TLS server, or it requires a client certificate)";
      break;
    case httplib::Error::SSLLoadingCerts:
      why = fmt::format("TLS: cannot load the CA certificates{}",
                        c.tls.ca_file.empty() ? "" : " in " + c.tls.ca_file);
      break;
    default:
      why = httplib::to_string(error);
      // A plain request to a TLS server reads back a TLS alert, not an HTTP answer.
      if (error == httplib::Error::Read && c.base_url.rfind("http://", 0) == 0) {
        why += " (is it a TLS server? then use an https:// URL)";
      }
  }
  return fmt::format("cloud unreachable at {}: {}", c.base_url, why);
}

CloudFailure cloud_failure_of_status(int status) {
  if (status == 404) return CloudFailure::NotFound;
  if (status == 409) return CloudFailure::ModelMismatch;
  if (status >= 400 && status < 500) return CloudFailure::Rejected;
  return CloudFailure::ServerError;
}

std::string strip_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

CloudClient::CloudClient(CloudConnection connection) : connection_(std::move(connection)) {
  connection_.base_url = strip_trailing_slashes(connection_.base_url);
}

CloudPromptInfo CloudClient::prompt(const std::string& id) const {
  return *prompt_if_changed(id, "");
}

std::optional<CloudPromptInfo> CloudClient::prompt_if_changed(const std::string& id,
                                                              const std::string& etag) const {
  const auto client = open_cloud_client(connection_);
  const std::string what = fmt::format("cloud prompt '{}'", id);
  httplib::Headers headers;
  if (!etag.empty()) headers.emplace("If-None-Match", etag);
  const auto r = client->Get("/v1/cloud-prompts/" + id, headers);
  if (r && r->status == 304 && !etag.empty()) return std::nullopt;
  CloudPromptInfo info = prompt_info(expect_json(r, connection_, 200, what), connection_);
  info.etag = r->get_header_value("ETag");
  return info;
}

std::vector<CloudPromptInfo> CloudClient::prompts() const {
  const auto client = open_cloud_client(connection_);
  const json list = expect_json(client->Get("/v1/cloud-prompts"), connection_, 200, "the list");
  std::vector<CloudPromptInfo> out;
  if (!list.contains("data") || !list["data"].is_array()) {
    throw CloudError(CloudFailure::Corrupt,
                     fmt::format("cloud at {} sent a list without 'data'", connection_.base_url));
  }
  for (const json& p : list["data"]) out.push_back(prompt_info(p, connection_));
  return out;
}

CloudPromptInfo CloudClient::put_prompt(const std::string& id, const CloudPromptSpec& spec) const {
  json body = {{"chat_template", spec.chat_template}};
  if (spec.tokens) body["tokens"] = *spec.tokens;
  if (!spec.text.empty() || !spec.tokens) body["text"] = spec.text;
  const auto client = open_cloud_client(connection_);
  const std::string what = fmt::format("registering '{}'", id);
  return prompt_info(
      expect_json(client->Put("/v1/cloud-prompts/" + id, body.dump(), "application/json"),
                  connection_, 201, what),
      connection_);
}

void CloudClient::delete_prompt(const std::string& id) const {
  const auto client = open_cloud_client(connection_);
  expect_json(client->Delete("/v1/cloud-prompts/" + id), connection_, 200,
              fmt::format("deleting '{}'", id));
}

}  // namespace ep
