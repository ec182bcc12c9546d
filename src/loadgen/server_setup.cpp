#include "loadgen/server_setup.h"

#include "core/error.h"
#include "loadgen/http_client.h"

#include <fmt/core.h>
#include <httplib.h>

#include <thread>

namespace ep::loadgen {

using json = nlohmann::json;

namespace {

struct Connection {
  std::unique_ptr<httplib::Client> client;
  std::string prefix;
  httplib::Headers headers;
  Connection(const Target& t, const std::string& token)
      : client(make_client(t, 60)), prefix(split_base_url(t.base_url).second) {
    client->set_connection_timeout(10, 0);
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  }
};

json parse_or_empty(const std::string& body) {
  try {
    return json::parse(body);
  } catch (const std::exception&) {
    return json::object();
  }
}

std::string message_of(const httplib::Result& r) {
  if (!r) return httplib::to_string(r.error());
  const json j = parse_or_empty(r->body);
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].contains("message")) {
    return fmt::format("HTTP {}: {}", r->status, j["error"]["message"].dump());
  }
  return fmt::format("HTTP {}: {}", r->status, r->body.substr(0, 300));
}

}  // namespace

std::optional<std::string> served_model(const Target& target) {
  Connection c(target, target.api_key);
  const auto r = c.client->Get(c.prefix + "/v1/models", c.headers);
  if (!r || r->status != 200) return std::nullopt;
  const json j = parse_or_empty(r->body);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty()) {
    return std::nullopt;
  }
  const json& m = j["data"][0];
  if (!m.is_object() || !m.contains("id") || !m["id"].is_string()) return std::nullopt;
  return m["id"].get<std::string>();
}

size_t cloud_prompt_tokens(const Target& target, const std::string& id) {
  Connection c(target, target.api_key);
  const auto r = c.client->Get(c.prefix + "/v1/cloud-prompts/" + id, c.headers);
  if (!r || r->status != 200) fail("cloud prompt '{}': {}", id, message_of(r));
  const json j = parse_or_empty(r->body);
  if (!j.contains("n_tokens") || !j["n_tokens"].is_number_unsigned()) {
    fail("cloud prompt '{}': the server's description has no n_tokens", id);
  }
  return j["n_tokens"].get<size_t>();
}

size_t register_cloud_prompt(const Target& target, const std::string& id, const std::string& text,
                             const std::string& chat_template, const std::string& admin_token,
                             double timeout_s) {
  Connection c(target, admin_token);
  const json body = {{"text", text}, {"chat_template", chat_template}};
  const auto r = c.client->Put(c.prefix + "/v1/cloud-prompts/" + id, c.headers, body.dump(),
                               "application/json");
  if (!r || (r->status != 200 && r->status != 201)) {
    fail("registering cloud prompt '{}': {}", id, message_of(r));
  }
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_s));
  Connection poll(target, target.api_key);
  while (true) {
    const auto g = poll.client->Get(poll.prefix + "/v1/cloud-prompts/" + id, poll.headers);
    if (!g || g->status != 200) fail("cloud prompt '{}': {}", id, message_of(g));
    const json j = parse_or_empty(g->body);
    const std::string state = j.value("state", std::string());
    if (state == "ready") return j.value("n_tokens", size_t(0));
    if (state == "failed") fail("cloud prompt '{}': the cloud's prefill failed", id);
    if (Clock::now() > deadline) {
      fail("cloud prompt '{}': not ready after {} s (state '{}')", id, timeout_s, state);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace ep::loadgen
