#include "tokenizer/chat_template.h"

#include "core/error.h"
#include "tokenizer/jinja_chat.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>

namespace ep {
namespace {

void check_messages(std::span<const ChatMessage> messages) {
  if (messages.empty()) fail("chat: no user message");
  for (size_t i = 0; i < messages.size(); ++i) {
    const char* expected = i % 2 == 0 ? "user" : "assistant";
    if (messages[i].role != expected) {
      fail("chat: message {} has role '{}', expected '{}' (turns alternate, user first)", i,
           messages[i].role, expected);
    }
  }
  if (messages.back().role != "user") fail("chat: the last message must be the user's");
}

// Llama 2: "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s><s>[INST] ...".
// BOS of the first turn is added by the tokenizer, not written here.
RenderedChat render_llama2(std::string_view system, std::span<const ChatMessage> messages) {
  RenderedChat r;
  if (!system.empty()) r.prefix = fmt::format("[INST] <<SYS>>\n{}\n<</SYS>>\n\n", system);
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& text = messages[i].content;
    if (i % 2 == 1) {
      r.suffix += fmt::format(" {} </s><s>", text);
    } else if (i == 0 && !system.empty()) {
      r.suffix += fmt::format("{} [/INST]", text);
    } else {
      r.suffix += fmt::format("[INST] {} [/INST]", text);
    }
  }
  return r;
}

RenderedChat render_llama3(std::string_view system, std::span<const ChatMessage> messages) {
  const auto turn = [](std::string_view role, std::string_view text) {
    return fmt::format("<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>", role, text);
  };
  RenderedChat r;
  if (!system.empty()) r.prefix = turn("system", system);
  for (const auto& m : messages) r.suffix += turn(m.role, m.content);
  r.suffix += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return r;
}

RenderedChat render_chatml(std::string_view system, std::span<const ChatMessage> messages) {
  const auto turn = [](std::string_view role, std::string_view text) {
    return fmt::format("<|im_start|>{}\n{}<|im_end|>\n", role, text);
  };
  RenderedChat r;
  if (!system.empty()) r.prefix = turn("system", system);
  for (const auto& m : messages) r.suffix += turn(m.role, m.content);
  r.suffix += "<|im_start|>assistant\n";
  return r;
}

}  // namespace

ChatFormat chat_format_from_name(std::string_view name) {
  if (name == "none") return ChatFormat::none;
  if (name == "llama2") return ChatFormat::llama2;
  if (name == "llama3") return ChatFormat::llama3;
  if (name == "chatml") return ChatFormat::chatml;
  fail(
      "unknown chat template '{}' (choose llama2, llama3, chatml or none, or model for the "
      "model's own)",
      name);
}

bool is_chat_format_name(std::string_view name) {
  return name == "none" || name == "llama2" || name == "llama3" || name == "chatml";
}

std::string_view chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::none:
      return "none";
    case ChatFormat::llama2:
      return "llama2";
    case ChatFormat::llama3:
      return "llama3";
    case ChatFormat::chatml:
      return "chatml";
  }
  return "none";
}

std::optional<ChatFormat> detect_chat_format(std::string_view jinja) {
  const auto has = [&](std::string_view s) { return jinja.find(s) != std::string_view::npos; };
  if (has("<|im_start|>")) return ChatFormat::chatml;
  if (has("<|start_header_id|>") && has("<|eot_id|>")) return ChatFormat::llama3;
  if (has("[INST]") && has("<<SYS>>")) return ChatFormat::llama2;
  return std::nullopt;
}

RenderedChat render_chat(ChatFormat format, std::string_view system,
                         std::span<const ChatMessage> messages) {
  check_messages(messages);
  switch (format) {
    case ChatFormat::llama2:
      return render_llama2(system, messages);
    case ChatFormat::llama3:
      return render_llama3(system, messages);
    case ChatFormat::chatml:
      return render_chatml(system, messages);
    case ChatFormat::none:
      break;
  }
  RenderedChat r{std::string(system), {}};
  for (const auto& m : messages) r.suffix += m.content;
  return r;
}

ChatTokens chat_tokens(const Tokenizer& tokenizer, const RenderedChat& chat, ChatFormat format) {
  const bool special = format != ChatFormat::none;
  ChatTokens t;
  t.prefix = tokenizer.encode(chat.prefix, tokenizer.add_bos_default(), special);
  t.suffix = tokenizer.encode(chat.suffix, false, special);
  return t;
}

ChatTemplate::ChatTemplate(ChatFormat format) : name_(chat_format_name(format)), format_(format) {}

ChatTemplate::ChatTemplate(std::shared_ptr<const JinjaChat> jinja)
    : name_(jinja->name()), jinja_(std::move(jinja)) {}

ChatTemplate ChatTemplate::broken(std::string name, std::string error) {
  ChatTemplate t;
  t.name_ = std::move(name);
  t.error_ = std::move(error);
  return t;
}

void ChatTemplate::check() const {
  if (!error_.empty()) fail("{}", error_);
}

RenderedChat ChatTemplate::render(std::string_view system,
                                  std::span<const ChatMessage> messages) const {
  check();
  return jinja_ ? jinja_->split(system, messages) : render_chat(format_, system, messages);
}

std::string ChatTemplate::render_whole(std::string_view system,
                                       std::span<const ChatMessage> messages,
                                       const nlohmann::ordered_json& tools) const {
  check();
  if (jinja_) return jinja_->render_chat(system, messages, tools);
  if (!tools.is_null()) fail("chat template '{}' has no place for tools", name_);
  RenderedChat r = render_chat(format_, system, messages);
  return r.prefix + r.suffix;
}

ChatTokens ChatTemplate::tokens(const Tokenizer& tokenizer, const RenderedChat& chat) const {
  if (!jinja_) return chat_tokens(tokenizer, chat, format_);
  return {tokenizer.encode(chat.prefix, false, true), tokenizer.encode(chat.suffix, false, true)};
}

std::vector<int32_t> ChatTemplate::tokens(const Tokenizer& tokenizer,
                                          std::string_view whole) const {
  if (jinja_) return tokenizer.encode(whole, false, true);
  return tokenizer.encode(whole, tokenizer.add_bos_default(), format_ != ChatFormat::none);
}

ChatTemplate chat_template_by_name(std::string_view name, const ChatTemplate& model) {
  if (name == "model") {
    if (model.name() == "none") {
      fail("chat template 'model': the model carries no chat template");
    }
    return model;
  }
  return ChatTemplate(chat_format_from_name(name));
}

}  // namespace ep
