#include "tokenizer/jinja_chat.h"

#include "core/error.h"

namespace ep {
namespace {

using json = nlohmann::ordered_json;

json message_list(std::string_view system, std::span<const ChatMessage> messages) {
  json list = json::array();
  if (!system.empty()) list.push_back({{"role", "system"}, {"content", system}});
  for (const auto& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  return list;
}

}  // namespace

JinjaChat::JinjaChat(std::string name, std::string_view source, std::string bos, std::string eos,
                     const jinja::Options& options)
    : name_(std::move(name)), bos_(std::move(bos)), eos_(std::move(eos)) {
  try {
    template_ = jinja::Template::parse(source, options);
  } catch (const Error& e) {
    fail("chat template '{}': {}", name_, e.what());
  }
}

std::string JinjaChat::render(const json& messages, const json& tools,
                              bool add_generation_prompt) const {
  json context;
  context["messages"] = messages;
  context["tools"] = tools;
  context["add_generation_prompt"] = add_generation_prompt;
  context["bos_token"] = bos_;
  context["eos_token"] = eos_;
  try {
    return template_.render(context);
  } catch (const Error& e) {
    fail("chat template '{}': {}", name_, e.what());
  }
}

std::string JinjaChat::render_chat(std::string_view system, std::span<const ChatMessage> messages,
                                   const json& tools) const {
  if (messages.empty()) fail("chat: no user message");
  return render(message_list(system, messages), tools, true);
}

RenderedChat JinjaChat::split(std::string_view system,
                              std::span<const ChatMessage> messages) const {
  if (system.empty()) return {"", render_chat(system, messages)};
  const auto parts = [&](std::string_view sys) {
    RenderedChat r{render(message_list(sys, {}), nullptr, false), render_chat(sys, messages)};
    if (!r.suffix.starts_with(r.prefix)) {
      fail(
          "chat template '{}' cannot split a chat into a cloud prompt and a private part: the "
          "render of the system message alone is not the start of the render of the chat",
          name_);
    }
    r.suffix.erase(0, r.prefix.size());
    return r;
  };
  RenderedChat r = parts(system);
  // A second system text must change the system part only.
  const std::string other =
      system == "Another system message." ? "A system message." : "Another system message.";
  if (parts(other).suffix != r.suffix) {
    fail(
        "chat template '{}' cannot split a chat into a cloud prompt and a private part: what it "
        "renders after the system message depends on the system text",
        name_);
  }
  return r;
}

}  // namespace ep
