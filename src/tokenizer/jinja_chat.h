// A chat rendered by a Jinja chat template (the model's own, tokenizer.chat_template or
// tokenizer_config.json's chat_template, or a file), with the context Hugging Face gives it:
// messages, tools, add_generation_prompt, bos_token and eos_token.
//
// The split into the cloud prompt and the private part is defined by renders, since a template
// may put the system message anywhere: the system part is the render of the system message
// alone; the rest is what the render of the whole chat adds after it. A template can be split
// only if that render is a prefix of the whole one and what follows does not depend on the
// system text (checked on every split against a second system text): otherwise the private part
// would carry, or the cloud part miss, the system message. Mistral's templates, which put the
// system message into the last user turn, are refused that way.
#pragma once

#include "jinja/template.h"
#include "tokenizer/chat_template.h"

#include <nlohmann/json.hpp>

#include <span>
#include <string>
#include <string_view>

namespace ep {

class JinjaChat {
 public:
  // Throws ep::Error "chat template 'NAME': template: line L, column C: ..." if `source` does not
  // parse. `bos` and `eos` are the texts of the vocabulary's BOS and EOS tokens.
  JinjaChat(std::string name, std::string_view source, std::string bos, std::string eos,
            const jinja::Options& options = jinja::Options::hugging_face());

  const std::string& name() const { return name_; }

  // The template over `messages` (a JSON list of {"role", "content", ...}) and `tools` (a JSON
  // list, or null for none). Throws ep::Error "chat template 'NAME': template: line L: ..." when
  // the template fails (raise_exception included).
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     bool add_generation_prompt) const;

  // The chat as {"system", "user"/"assistant" ...} messages, ending with the generation prompt.
  std::string render_chat(std::string_view system, std::span<const ChatMessage> messages,
                          const nlohmann::ordered_json& tools = nullptr) const;

  // The two parts described above (an empty system: no system part, the whole chat after it).
  // Throws ep::Error naming the template when it cannot be split.
  RenderedChat split(std::string_view system, std::span<const ChatMessage> messages) const;

 private:
  std::string name_;
  jinja::Template template_;
  std::string bos_, eos_;
};

}  // namespace ep
