// A chat request as token ids in its two parts: the cloud prompt (the system part, computed once
// on the cloud and shared by every request of a service) and the private part (the conversation
// after it, computed only on the device). The split that keeps private text on the device is
// made here and nowhere else: the cloud's registration, the edge service and `edgeprompt run`
// all call these functions, with a built-in format or a Jinja template (chat_template.h).
#pragma once

#include "tokenizer/chat_template.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace ep {

// BOS (if the model adds one) + the system part of `tmpl` around `system`. For a Jinja template
// this also checks, with a stand-in user message, that the tokens of the system part followed by
// those of the rest are the tokens of the whole chat (ep::Error naming the template otherwise).
std::vector<int32_t> cloud_prompt_tokens(const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                         std::string_view system);

// The tokens that follow any cloud prompt of `tmpl`: `messages` (user first, alternating,
// ending with a user message) and the assistant generation prompt. They depend on the messages
// alone, never on the system text, so the device needs nothing of the cloud prompt but its
// template to compute them.
std::vector<int32_t> private_prompt_tokens(const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                           std::span<const ChatMessage> messages);

// A whole conversation on one machine (no cloud prompt): the system part, empty if `system` is,
// then the messages; `tools` (a JSON list, or null) for a Jinja template. Without tools it
// equals cloud_prompt_tokens + private_prompt_tokens for a non-empty system (for a Jinja
// template: one that can be split).
std::vector<int32_t> local_chat_tokens(const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                       std::string_view system,
                                       std::span<const ChatMessage> messages,
                                       const nlohmann::ordered_json& tools = nullptr);

}  // namespace ep
