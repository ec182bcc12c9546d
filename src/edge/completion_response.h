// The bodies the edge answers a completion with, in the OpenAI shape: the whole response, the
// server-sent-event chunks of a streamed one, and "usage" with EdgePrompt's "timings" (where the
// KV came from, and per layer when it arrived, how long the edge waited and computed).
#pragma once

#include "edge/cloud_kv_source.h"
#include "edge/completion_request.h"
#include "runtime/generate.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace ep {

// Times count from the request's arrival at the edge: `setup_s` covers the cloud metadata request,
// the start of the KV stream, tokenisation and waiting for the compute lock.
nlohmann::json completion_usage(const GenerationResult& r, const CompletionRequest& req,
                                const CloudKv* kv, double setup_s,
                                std::chrono::steady_clock::time_point t_request);

// One streamed piece (`finish` set on the last chunk).
nlohmann::json completion_chunk(const CompletionRequest& req, const std::string& id,
                                const std::string& text, const std::optional<std::string>& finish);

// The whole answer, usage included.
nlohmann::json completion_body(const CompletionRequest& req, const std::string& id,
                               const GenerationResult& r, nlohmann::json usage);

// "cmpl-" and 16 random hex digits.
std::string completion_id();

}  // namespace ep
