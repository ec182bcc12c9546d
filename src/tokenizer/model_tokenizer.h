// The tokenizer and chat template that come with a model: GGUF metadata (tokenizer.ggml.*,
// tokenizer.chat_template) or a Hugging Face directory's tokenizer files.
#pragma once

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <memory>
#include <string>

namespace ep {

class WeightSource;

// True when a Hugging Face directory holds tokenizer.model or tokenizer.json.
bool hf_dir_has_tokenizer(const std::filesystem::path& dir);

// nullptr when the model carries no tokenizer (the test fixtures, synthetic models); ep::Error
// when it carries one we cannot read.
std::unique_ptr<Tokenizer> load_tokenizer(const WeightSource& source);

// The Jinja chat template (GGUF tokenizer.chat_template, or tokenizer_config.json's
// "chat_template": a string, or the entry named "default" of a list); empty if there is none.
std::string chat_template_text(const WeightSource& source);
std::string hf_chat_template(const std::filesystem::path& dir);

// The model's own chat template, named "model": its Jinja template with the vocabulary's BOS and
// EOS texts. None when the model carries no template (or no tokenizer). A template that does not
// parse falls back to the built-in format it is recognised as (detect_chat_format), if any;
// otherwise it is ChatTemplate::broken, so that only chats fail (with the parse error), never
// the loading of the model or requests without a chat.
ChatTemplate model_chat_template(const WeightSource& source, const Tokenizer* tokenizer);

// A Jinja template file (`edgeprompt run --chat-template-file`), named by its path; ep::Error if
// it cannot be read or does not parse.
ChatTemplate chat_template_file(const std::filesystem::path& path, const Tokenizer& tokenizer);

}  // namespace ep
