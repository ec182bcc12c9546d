// A chat request as token ids in its two parts: the cloud prompt (the system part, computed once
// on the cloud and shared by every request of a service) and the private part (the conversation
// after it, computed only on the device). The split that keeps private text on the device is
// made here and nowhere else: the cloud's registration, the edge service and `edgeprompt run`
// all call these functions.
#pragma once

#include "tokenizer/chat_template.h"

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace ep {

// BOS (if the model adds one) + the system part of `format` around `system`.
std::vector<int32_t> cloud_prompt_tokens(const Tokenizer& tokenizer, ChatFormat format,
                                         std::string_view system);

// The tokens that follow any cloud prompt of `format`: `messages` (user first, alternating,
// ending with a user message) and the assistant generation prompt. They depend on the messages
// alone, never on the system text, so the device needs nothing of the cloud prompt but its
// format to compute them.
std::vector<int32_t> private_prompt_tokens(const Tokenizer& tokenizer, ChatFormat format,
                                           std::span<const ChatMessage> messages);

// A whole conversation on one machine (no cloud prompt): the system part, empty if `system` is,
// then the messages. Equals cloud_prompt_tokens + private_prompt_tokens for a non-empty system.
std::vector<int32_t> local_chat_tokens(const Tokenizer& tokenizer, ChatFormat format,
                                       std::string_view system,
                                       std::span<const ChatMessage> messages);

}  // namespace ep
