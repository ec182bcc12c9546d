#include "openai/completion_request.h"

#include "http/error.h"
#include "http/json_ints.h"

#include <nlohmann/json.hpp>

#include <random>

namespace ep {
namespace {

using json = nlohmann::json;
using http::ErrorKind;

void read_messages(const json& j, CompletionRequest& req) {
  if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty()) {
    http::fail(ErrorKind::InvalidRequest, "'messages' must be a non-empty array");
  }
  for (const auto& m : j["messages"]) {
    const std::string role = m.at("role").get<std::string>();
    const std::string content = m.at("content").get<std::string>();
    if (role == "system") {
      if (req.cloud_prompt) {
        http::fail(ErrorKind::InvalidRequest,
                   "a request with 'cloud_prompt' takes its system part from the cloud; send no "
                   "system message");
      }
      if (!req.messages.empty() || !req.system.empty()) {
        http::fail(ErrorKind::InvalidRequest, "the system message must come first");
      }
      req.system = content;
    } else if (role == "user" || role == "assistant") {
      req.messages.push_back({role, content});
    } else {
      http::fail(ErrorKind::InvalidRequest, "unknown message role '{}'", role);
    }
  }
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& body, bool chat) {
  json j;
  try {
    j = json::parse(body);
  } catch (const std::exception& e) {
    http::fail(ErrorKind::InvalidRequest, "malformed JSON: {}", e.what());
  }
  if (!j.is_object())
    http::fail(ErrorKind::InvalidRequest, "the request body must be a JSON object");
  CompletionRequest req;
  req.chat = chat;
  try {
    req.stream = j.value("stream", false);
    req.model_name = j.value("model", std::string("edgeprompt"));
    if (j.contains("cloud_prompt") && !j["cloud_prompt"].is_null()) {
      req.cloud_prompt = j["cloud_prompt"].get<std::string>();
    }
    // Counts and ids without wrapping (http/json_ints.h): 4294967297 is refused, not 1.
    for (const char* name : {"max_completion_tokens", "max_tokens"}) {
      if (j.contains(name) && !j[name].is_null()) {
        req.gen.max_tokens = int(http::json_int(j[name], name, 1, 1 << 24));
      }
    }
    req.gen.ignore_eos = j.value("ignore_eos", false);  // as vLLM and llama-server take it
    SamplerParams& s = req.gen.sampling;
    s.temperature = j.value("temperature", 1.0f);
    s.top_p = j.value("top_p", 1.0f);
    s.top_k = j.contains("top_k") ? int(http::json_int(j["top_k"], "top_k", -1, 1 << 24)) : 0;
    s.min_p = j.value("min_p", 0.0f);
    s.presence_penalty = j.value("presence_penalty", 0.0f);
    s.repeat_penalty = j.value("repeat_penalty", 1.0f);
    s.seed = j.contains("seed") ? j["seed"].get<uint64_t>() : std::random_device{}();
    if (j.contains("stop")) {
      if (j["stop"].is_string()) {
        req.gen.stop = {j["stop"].get<std::string>()};
      } else {
        req.gen.stop = j["stop"].get<std::vector<std::string>>();
      }
    }
    if (chat) {
      read_messages(j, req);
      if (j.contains("tools") && !j["tools"].is_null()) {
        if (!j["tools"].is_array())
          http::fail(ErrorKind::InvalidRequest, "'tools' must be an array");
        if (req.cloud_prompt) {
          http::fail(ErrorKind::InvalidRequest,
                     "'tools' cannot be combined with 'cloud_prompt' (its system part is rendered "
                     "without them)");
        }
        // Again in the document's key order, which the template prints (tojson).
        req.tools = nlohmann::ordered_json::parse(body)["tools"];
      }
    } else {
      if (!j.contains("prompt")) http::fail(ErrorKind::InvalidRequest, "'prompt' is required");
      if (j["prompt"].is_string()) {
        req.prompt = j["prompt"].get<std::string>();
      } else {
        req.prompt_ids = http::json_token_ids(j["prompt"], "prompt");
      }
    }
  } catch (const http::HttpError&) {
    throw;
  } catch (const std::exception& e) {
    http::fail(ErrorKind::InvalidRequest, "invalid request: {}", e.what());
  }
  if (req.gen.max_tokens < 1)
    http::fail(ErrorKind::InvalidRequest, "max_tokens must be at least 1");
  return req;
}

}  // namespace ep
