#include "loadgen/stream_request.h"

#include "core/error.h"
#include "loadgen/http_client.h"
#include "loadgen/sse.h"

#include <fmt/core.h>
#include <httplib.h>

namespace ep::loadgen {

using json = nlohmann::json;

std::pair<std::string, std::string> split_base_url(const std::string& base_url) {
  const size_t scheme = base_url.find("://");
  if (scheme == std::string::npos ||
      (base_url.compare(0, scheme, "http") != 0 && base_url.compare(0, scheme, "https") != 0)) {
    fail("--base-url '{}' must start with http:// or https://", base_url);
  }
  const size_t path = base_url.find('/', scheme + 3);
  if (path == std::string::npos) return {base_url, ""};
  std::string prefix = base_url.substr(path);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return {base_url.substr(0, path), prefix};
}

json request_body(const Target& target, const BodyOptions& o, const BenchPrompt& prompt) {
  json body = {{"model", target.model},
               {"max_tokens", prompt.output_len},
               {"temperature", o.temperature},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (o.ignore_eos) body["ignore_eos"] = true;
  if (o.cloud_prompt) body["cloud_prompt"] = *o.cloud_prompt;
  if (target.chat()) {
    json messages = json::array();
    if (!o.system_prompt.empty())
      messages.push_back({{"role", "system"}, {"content", o.system_prompt}});
    messages.push_back({{"role", "user"}, {"content", prompt.text}});
    body["messages"] = std::move(messages);
  } else {
    body["prompt"] = o.system_prompt.empty() ? prompt.text : o.system_prompt + "\n" + prompt.text;
  }
  body.update(o.extra_body);
  return body;
}

namespace {

std::string error_message(const json& j) {
  const json& e = j["error"];
  if (e.is_object() && e.contains("message") && e["message"].is_string()) {
    return e["message"].get<std::string>();
  }
  return e.dump();
}

// The text of a chunk's first choice: "delta.content" (chat) or "text" (completions).
std::string chunk_text(const json& j, bool chat) {
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return {};
  const json& c = j["choices"][0];
  const json* t = nullptr;
  if (chat) {
    if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content")) {
      t = &c["delta"]["content"];
    }
  } else if (c.contains("text")) {
    t = &c["text"];
  }
  return t && t->is_string() ? t->get<std::string>() : std::string();
}

}  // namespace

bool apply_stream_event(const std::string& data, bool chat, double now_s, RequestRecord& r,
                        double& last_token_s) {
  if (data == "[DONE]") return false;
  json j;
  try {
    j = json::parse(data);
  } catch (const std::exception&) {
    r.error = fmt::format("an event that is not JSON: {}", data.substr(0, 200));
    return false;
  }
  if (!j.is_object()) {
    r.error = fmt::format("an event that is not a JSON object: {}", data.substr(0, 200));
    return false;
  }
  if (j.contains("error")) {
    r.error = "error event: " + error_message(j);
    return false;
  }
  const std::string text = chunk_text(j, chat);
  if (!text.empty()) {
    if (r.chunks == 0) {
      r.ttft = now_s;
    } else {
      r.itl.push_back(now_s - last_token_s);
    }
    last_token_s = now_s;
    ++r.chunks;
    r.text += text;
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    const json& u = j["usage"];
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_unsigned()) {
      r.output_len = u["completion_tokens"].get<size_t>();
      r.usage_reported = true;
    }
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_unsigned()) {
      r.server_prompt_tokens = u["prompt_tokens"].get<size_t>();
    }
  }
  return true;
}

RequestRecord send_streaming(const Target& target, const json& body, size_t prompt_len,
                             Clock::time_point run_start) {
  RequestRecord r;
  r.prompt_len = prompt_len;
  r.expected_output_len = body.value("max_tokens", size_t(0));
  const std::string prefix = split_base_url(target.base_url).second;
  const bool chat = target.chat();

  const auto client = make_client(target, target.timeout_s);

  httplib::Request req;
  req.method = "POST";
  req.path = prefix + target.endpoint;
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  if (!target.api_key.empty()) req.set_header("Authorization", "Bearer " + target.api_key);
  req.body = body.dump(-1, ' ', false, json::error_handler_t::replace);

  const Clock::time_point sent = Clock::now();
  r.start_s = std::chrono::duration<double>(sent - run_start).count();
  const auto since_sent = [&] {
    return std::chrono::duration<double>(Clock::now() - sent).count();
  };
  int status = 0;
  std::string error_body;
  bool ended = false;  // [DONE] or an error event
  double last_token_s = 0;
  SseParser parser([&](const std::string& data) {
    if (!apply_stream_event(data, chat, since_sent(), r, last_token_s)) ended = true;
    return !ended;
  });
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (status != 200) {
      if (error_body.size() < 4096) error_body.append(data, n);
      return true;
    }
    // After [DONE] the rest is drained unread; a parse failure cancels the request.
    return parser.feed(std::string_view(data, n)) || ended;
  };
  const httplib::Result res = client->send(req);
  if (status == 0) {
    r.error = fmt::format("request failed: {}", httplib::to_string(res.error()));
    return r;
  }
  if (status != 200) {
    std::string msg = error_body;
    try {
      const json j = json::parse(error_body);
      if (j.is_object() && j.contains("error")) msg = error_message(j);
    } catch (const std::exception&) {
    }
    r.error = fmt::format("HTTP {}: {}", status, msg);
    return r;
  }
  if (!ended && r.error.empty()) {
    if (!res) {
      r.error = fmt::format("the stream was cut: {}", httplib::to_string(res.error()));
      return r;
    }
    parser.finish();
  }
  if (!parser.error().empty() && r.error.empty()) r.error = parser.error();
  if (!r.error.empty()) return r;
  if (!r.usage_reported) r.output_len = r.chunks;
  if (r.chunks == 0) {
    // No text: an answer that ended at once (EOS first) or tokens that decode to nothing. Its
    // first token is the end, which is when the stream ended.
    r.ttft = since_sent();
    last_token_s = r.ttft;
  }
  r.e2el = last_token_s;
  return r;
}

}  // namespace ep::loadgen
