// One streamed completion against an OpenAI-compatible server, timed the way vLLM's benchmark
// times it: TTFT at the first chunk that carries text, an inter-token latency per later such
// chunk, E2EL at the last one. Output tokens come from the "usage" of the stream's last chunk
// (asked for with stream_options.include_usage) when the server reports it, else one per chunk.
#pragma once

#include "loadgen/bench_metrics.h"
#include "loadgen/dataset.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace ep::loadgen {

// Where requests go. `base_url` is scheme://host[:port] with an optional path prefix.
struct Target {
  std::string base_url = "http://127.0.0.1:8080";
  std::string endpoint = "/v1/completions";  // or /v1/chat/completions
  std::string api_key;                       // sent as "Authorization: Bearer ..."
  std::string model;
  double timeout_s = 600;  // per read
  std::string ca_cert;     // PEM file of the CA that signed an https server's certificate
  bool chat() const { return endpoint.find("chat/completions") != std::string::npos; }
};

// scheme://host[:port] and the path prefix (no trailing '/') of a base URL; ep::Error if it has
// no http:// or https:// scheme.
std::pair<std::string, std::string> split_base_url(const std::string& base_url);

// What every request of a run carries besides its prompt.
struct BodyOptions {
  std::string system_prompt;                // chat: a system message; completions: prepended
  std::optional<std::string> cloud_prompt;  // "cloud_prompt": id (EdgePrompt's servers)
  bool ignore_eos = false;                  // generate exactly output_len tokens
  double temperature = 0;
  nlohmann::json extra_body = nlohmann::json::object();  // merged in last
};

nlohmann::json request_body(const Target& target, const BodyOptions& options,
                            const BenchPrompt& prompt);

using Clock = std::chrono::steady_clock;

// Sends `body` and reads the stream to its end. Never throws for the server's or the network's
// failures: they are the record's error (the HTTP status and the server's message, a cut
// stream, an error event). prompt_len and the times relative to `run_start` are filled in.
RequestRecord send_streaming(const Target& target, const nlohmann::json& body, size_t prompt_len,
                             Clock::time_point run_start);

// Feeds one event's data to a record being filled (split out to test it without a server).
// Returns false at "[DONE]" or an error event. `now_s` is seconds since the request was sent.
bool apply_stream_event(const std::string& data, bool chat, double now_s, RequestRecord& r,
                        double& last_token_s);

}  // namespace ep::loadgen
