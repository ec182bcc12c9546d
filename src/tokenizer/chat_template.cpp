#include "tokenizer/chat_template.h"

#include "core/error.h"
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
  fail("unknown chat template '{}' (choose llama2, llama3, chatml or none)", name);
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

}  // namespace ep
