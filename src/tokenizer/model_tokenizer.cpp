#include "tokenizer/model_tokenizer.h"

#include "core/error.h"
#include "model/gguf.h"
#include "model/weight_source.h"
#include "tokenizer/jinja_chat.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace ep {

namespace fs = std::filesystem;

bool hf_dir_has_tokenizer(const fs::path& dir) {
  return fs::exists(dir / "tokenizer.model") || fs::exists(dir / "tokenizer.json");
}

std::unique_ptr<Tokenizer> load_tokenizer(const WeightSource& source) {
  if (const GgufFile* gguf = source.gguf()) {
    if (!gguf->find("tokenizer.ggml.model")) return nullptr;
    return Tokenizer::from_gguf(*gguf);
  }
  if (!hf_dir_has_tokenizer(source.path())) return nullptr;
  return Tokenizer::from_hf_dir(source.path());
}

std::string hf_chat_template(const fs::path& dir) {
  const fs::path path = dir / "tokenizer_config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", path.string(), e.what());
  }
  const auto it = config.find("chat_template");
  if (it == config.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {  // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
    for (const auto& entry : *it) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        return entry["template"].get<std::string>();
      }
    }
  }
  return {};
}

std::string chat_template_text(const WeightSource& source) {
  if (const GgufFile* gguf = source.gguf()) {
    const GgufValue* v = gguf->find("tokenizer.chat_template");
    return v ? v->as_string() : std::string();
  }
  return hf_chat_template(source.path());
}

namespace {

std::string token_text(const Tokenizer& tokenizer, int32_t id) {
  return id >= 0 && id < tokenizer.n_vocab() ? tokenizer.token_to_piece(id) : std::string();
}

std::shared_ptr<const JinjaChat> parse_jinja(std::string name, std::string_view source,
                                             const Tokenizer& tokenizer) {
  return std::make_shared<const JinjaChat>(std::move(name), source,
                                           token_text(tokenizer, tokenizer.bos()),
                                           token_text(tokenizer, tokenizer.eos()));
}

}  // namespace

ChatTemplate model_chat_template(const WeightSource& source, const Tokenizer* tokenizer) {
  if (tokenizer == nullptr) return ChatTemplate(ChatFormat::none);
  const std::string text = chat_template_text(source);
  if (text.empty()) return ChatTemplate(ChatFormat::none);
  try {
    return ChatTemplate(parse_jinja("model", text, *tokenizer));
  } catch (const Error& e) {
    if (const auto format = detect_chat_format(text)) return ChatTemplate(*format);
    return ChatTemplate::broken("model", e.what());
  }
}

ChatTemplate chat_template_file(const fs::path& path, const Tokenizer& tokenizer) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open {}", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return ChatTemplate(parse_jinja(path.string(), text.str(), tokenizer));
}

}  // namespace ep
