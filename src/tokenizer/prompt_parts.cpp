#include "tokenizer/prompt_parts.h"

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace ep {

std::vector<int32_t> cloud_prompt_tokens(const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                         std::string_view system) {
  // The prefix does not depend on the messages; one stand-in user message makes the render valid.
  const ChatMessage stand_in{"user", "x"};
  const RenderedChat chat = tmpl.render(system, std::span(&stand_in, 1));
  ChatTokens t = tmpl.tokens(tokenizer, chat);
  if (tmpl.is_jinja()) {
    // The cloud's tokens must be where the whole chat's tokens begin, not merely its text.
    std::vector<int32_t> split = t.prefix;
    split.insert(split.end(), t.suffix.begin(), t.suffix.end());
    if (split != tmpl.tokens(tokenizer, chat.prefix + chat.suffix)) {
      fail(
          "chat template '{}' cannot split a chat into a cloud prompt and a private part: the "
          "system part does not end where a token ends",
          tmpl.name());
    }
  }
  return std::move(t.prefix);
}

std::vector<int32_t> private_prompt_tokens(const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                           std::span<const ChatMessage> messages) {
  // The suffix after a system part does not depend on the system text: render with a stand-in
  // and keep only the suffix, so nothing here can carry the cloud's text or the device's before it.
  const RenderedChat chat = tmpl.render("system", messages);
  return tmpl.tokens(tokenizer, {"", chat.suffix}).suffix;
}

std::vector<int32_t> local_chat_tokens(const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                       std::string_view system,
                                       std::span<const ChatMessage> messages,
                                       const nlohmann::ordered_json& tools) {
  if (tmpl.is_jinja()) return tmpl.tokens(tokenizer, tmpl.render_whole(system, messages, tools));
  if (!tools.is_null()) fail("chat template '{}' has no place for tools", tmpl.name());
  const ChatTokens t = tmpl.tokens(tokenizer, tmpl.render(system, messages));
  std::vector<int32_t> all = t.prefix;
  all.insert(all.end(), t.suffix.begin(), t.suffix.end());
  return all;
}

}  // namespace ep
