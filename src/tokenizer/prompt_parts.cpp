#include "tokenizer/prompt_parts.h"

#include "tokenizer/tokenizer.h"

namespace ep {

std::vector<int32_t> cloud_prompt_tokens(const Tokenizer& tokenizer, ChatFormat format,
                                         std::string_view system) {
  // The prefix does not depend on the messages; one stand-in user message makes the render valid.
  const ChatMessage stand_in{"user", "x"};
  return chat_tokens(tokenizer, render_chat(format, system, std::span(&stand_in, 1)), format)
      .prefix;
}

std::vector<int32_t> private_prompt_tokens(const Tokenizer& tokenizer, ChatFormat format,
                                           std::span<const ChatMessage> messages) {
  // The suffix after a system part does not depend on the system text: render with a stand-in
  // and keep only the suffix, so nothing here can carry the cloud's text or the device's before it.
  const RenderedChat chat = render_chat(format, "system", messages);
  return chat_tokens(tokenizer, {"", chat.suffix}, format).suffix;
}

std::vector<int32_t> local_chat_tokens(const Tokenizer& tokenizer, ChatFormat format,
                                       std::string_view system,
                                       std::span<const ChatMessage> messages) {
  const ChatTokens t = chat_tokens(tokenizer, render_chat(format, system, messages), format);
  std::vector<int32_t> all = t.prefix;
  all.insert(all.end(), t.suffix.begin(), t.suffix.end());
  return all;
}

}  // namespace ep
