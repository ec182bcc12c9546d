// The bodies a completion is answered with, in the OpenAI shape, the same from the cloud and
// from an edge: the whole response, the server-sent-event chunks of a streamed one, and "usage"
// with EdgePrompt's "timings" (where the shared KV came from, and per layer when it arrived, how
// long the prompt pass waited and computed).
#pragma once

#include "openai/completion_request.h"
#include "runtime/generate.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ep {

// The shared part of a request's KV (a cloud prompt): how many tokens, from where ("stream",
// "edge-cache", "cloud-relay", "none"), the bytes received and each layer's arrival in seconds
// since the request arrived (empty unless streamed).
struct SharedKvUsage {
  size_t n_tokens = 0;
  std::string source = "none";
  uint64_t bytes_received = 0;
  std::vector<double> layer_arrival_s;
};

// `setup_s`: from the request's arrival to the start of its generation (cloud metadata, the start
// of the KV stream, tokenisation); the times of `r` count from that start.
nlohmann::json completion_usage(const GenerationResult& r, const CompletionRequest& req,
                                const SharedKvUsage& kv, double setup_s);

// One streamed piece (`finish` set on the last chunk).
nlohmann::json completion_chunk(const CompletionRequest& req, const std::string& id,
                                const std::string& text, const std::optional<std::string>& finish);

// The whole answer, usage included.
nlohmann::json completion_body(const CompletionRequest& req, const std::string& id,
                               const GenerationResult& r, nlohmann::json usage);

// GET /v1/models: the one model a service runs, named by its fingerprint.
nlohmann::json model_list_body(const std::string& fingerprint);

// "cmpl-" and 16 random hex digits.
std::string completion_id();

}  // namespace ep
