// What a run asks the server before it starts: the model it serves (GET /v1/models), and, on
// EdgePrompt's servers, the shared system prompt registered as a cloud prompt
// (PUT /v1/cloud-prompts/{id}, then polled until its KV is ready) or the size of one that is.
#pragma once

#include "loadgen/stream_request.h"

#include <optional>
#include <string>

namespace ep::loadgen {

// The first model id the server lists; nullopt if it lists none or does not answer.
std::optional<std::string> served_model(const Target& target);

// Registers `text` under `id` in `chat_template`'s format and waits (up to `timeout_s`) until
// the cloud has computed its KV. Returns the prompt's token count. ep::Error with the server's
// message if it refuses or the prefill fails.
size_t register_cloud_prompt(const Target& target, const std::string& id, const std::string& text,
                             const std::string& chat_template, const std::string& admin_token,
                             double timeout_s);

// The token count of a registered cloud prompt; ep::Error if the server does not know it.
size_t cloud_prompt_tokens(const Target& target, const std::string& id);

}  // namespace ep::loadgen
