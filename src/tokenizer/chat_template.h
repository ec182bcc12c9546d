// Chat templates: the built-in formats below, or a Jinja template (class ChatTemplate at the end,
// jinja_chat.h), rendered as two strings: the system part (the cloud prompt, a token prefix shared
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

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

class Tokenizer;
class JinjaChat;

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
bool is_chat_format_name(std::string_view name);
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

// What renders a chat: one of the built-in formats above, or a Jinja template (jinja_chat.h).
// Cheap to copy (a parsed template is shared). A Jinja template's text is tokenized with control
// tokens parsed and no BOS added, as Hugging Face does (the template writes bos_token itself).
class ChatTemplate {
 public:
  ChatTemplate(ChatFormat format = ChatFormat::none);  // NOLINT: a format is a template
  explicit ChatTemplate(std::shared_ptr<const JinjaChat> jinja);
  // A template that could not be loaded: every render throws ep::Error with `error`.
  static ChatTemplate broken(std::string name, std::string error);

  // The built-in format's name, or the Jinja template's ("model" for the model's own).
  const std::string& name() const { return name_; }
  bool is_jinja() const { return jinja_ != nullptr; }
  // The built-in format (none for a Jinja template).
  ChatFormat format() const { return format_; }

  // The chat in two parts (prefix: the system part). Throws ep::Error for a conversation the
  // template refuses, or a Jinja template that cannot be split (jinja_chat.h).
  RenderedChat render(std::string_view system, std::span<const ChatMessage> messages) const;
  // The whole chat as one text; `tools` (a JSON list, or null) only with a Jinja template.
  std::string render_whole(std::string_view system, std::span<const ChatMessage> messages,
                           const nlohmann::ordered_json& tools = nullptr) const;
  ChatTokens tokens(const Tokenizer& tokenizer, const RenderedChat& chat) const;
  // The tokens of a whole rendered chat (render_whole).
  std::vector<int32_t> tokens(const Tokenizer& tokenizer, std::string_view whole) const;

 private:
  void check() const;
  std::string name_;
  ChatFormat format_ = ChatFormat::none;
  std::shared_ptr<const JinjaChat> jinja_;
  std::string error_;
};

// The template `name` names: a built-in format, or "model" for `model` (the model's own
// template, model_tokenizer.h; ep::Error if the model carries none).
ChatTemplate chat_template_by_name(std::string_view name, const ChatTemplate& model);

}  // namespace ep
