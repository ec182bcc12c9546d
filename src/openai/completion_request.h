// An OpenAI completion request as the edge reads it: /v1/chat/completions (messages) or
// /v1/completions (a prompt as text or token ids), the sampling options, and "cloud_prompt", the
// id of the registered cloud prompt whose KV stands in for the system message.
#pragma once

#include "runtime/generate.h"
#include "tokenizer/chat_template.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ep {

struct CompletionRequest {
  bool chat = true;
  bool stream = false;
  GenerationRequest gen;  // tokens and prefix are filled in later
  std::optional<std::string> cloud_prompt;
  std::vector<ChatMessage> messages;
  std::string system;            // a local system message (only without cloud_prompt)
  nlohmann::ordered_json tools;  // "tools" as sent (for a Jinja template), or null
  std::string prompt;            // /v1/completions
  std::optional<std::vector<int32_t>> prompt_ids;
  std::string model_name = "edgeprompt";
};

// Throws http::HttpError (InvalidRequest) naming what is wrong: malformed JSON, a missing or
// mistyped field, a system message or tools beside a cloud prompt, max_tokens < 1.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

}  // namespace ep
