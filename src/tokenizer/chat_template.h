// Chat formats, rendered as two strings: the system part (the cloud prompt, a token prefix shared
// by every request) and the rest (the edge prompt, ending with the assistant generation prompt).
//
// The token sequence fed to the model is, by definition,
//   encode(prefix, add_bos = model default) + encode(suffix, add_bos = false)
// with control tokens parsed in both (see chat_tokens). The prefix's tokens therefore depend on
// the system message alone, never on what follows, and the cloud can compute them once. For
// chatml and llama3 the prefix ends right after an end-of-turn control token plus, for chatml, a
// newline, and the suffix starts with a control token, so the split tokens are also exactly the
// tokens of the whole text. For llama2 the user message continues the [INST] block begun in the
// prefix ("<</SYS>>\n\n" then the message), so a SentencePiece tokenizer gives its first word the
// word-start space (U+2581) it gives any text start: the split sequence is then one piece away
// from tokenizing the whole string, the price of keeping the system message separable.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

class Tokenizer;

enum class ChatFormat { none, llama2, llama3, chatml };

struct ChatMessage {
  std::string role;  // "user" or "assistant"
  std::string content;
};

struct RenderedChat {
  std::string prefix;  // the system part; empty when there is no system message (and for none)
  std::string suffix;  // the conversation, ending with the assistant generation prompt
};

struct ChatTokens {
  std::vector<int32_t> prefix;  // BOS (if the model adds one) + the system part
  std::vector<int32_t> suffix;
};

// "llama2", "llama3", "chatml", "none"; throws ep::Error naming the choices for anything else.
ChatFormat chat_format_from_name(std::string_view name);
std::string_view chat_format_name(ChatFormat format);

// Recognises a Jinja chat template (GGUF tokenizer.chat_template) by distinctive substrings,
// without executing it; nullopt when it matches none of ours.
std::optional<ChatFormat> detect_chat_format(std::string_view jinja);

// Renders the conversation. `messages` alternate user/assistant, starting and ending with a user
// message (ep::Error otherwise). With ChatFormat::none the prefix is the system text and the
// suffix the messages' contents, concatenated as given.
RenderedChat render_chat(ChatFormat format, std::string_view system,
                         std::span<const ChatMessage> messages);

// Tokenizes a rendered chat as described above (control tokens parsed, except for none, whose
// text is the user's own).
ChatTokens chat_tokens(const Tokenizer& tokenizer, const RenderedChat& chat, ChatFormat format);

}  // namespace ep
