// Vocab from a Hugging Face model directory:
//  - tokenizer.model (SentencePiece BPE, e.g. Llama/Mistral) -> VocabKind::spm, or
//  - tokenizer.json with a byte-level BPE model (GPT-2, Llama-3, Qwen2) -> VocabKind::bpe,
// plus tokenizer_config.json (special tokens, add_bos_token/add_eos_token, added tokens) and, as a
// fallback for BOS/EOS ids, config.json. The result is what our converter writes to GGUF.
#include "core/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>

namespace ep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}", path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", path.string(), e.what());
  }
}

std::optional<json> read_json_if_exists(const fs::path& path) {
  if (!fs::exists(path)) return std::nullopt;
  return read_json(path);
}

// A token setting in tokenizer_config.json: "text", {"content": "text", ...} or null.
std::optional<std::string> token_setting(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return it->at("content").get<std::string>();
  return std::nullopt;
}

struct AddedToken {
  int32_t id;
  std::string content;
  bool special;
};

// Added tokens get their own ids (possibly past the model's vocabulary). Special ones become
// control tokens (parsed only on request), the others user-defined (always matched in the text).
void apply_added_tokens(Vocab& v, const std::vector<AddedToken>& added, std::string_view source) {
  for (const AddedToken& a : added) {
    if (a.id < 0 || a.id > 10'000'000) fail("{}: added token id {} is invalid", source, a.id);
    if (a.content.empty() || !is_valid_utf8(a.content)) {
      fail("{}: added token {} has empty or non-UTF-8 text", source, a.id);
    }
    while (v.size() <= a.id) {  // holes are filled as llama.cpp's converter does
      v.tokens.push_back(fmt::format("[PAD{}]", v.size()));
      v.types.push_back(TokenType::unused);
      if (!v.scores.empty()) v.scores.push_back(0.0f);
    }
    const auto i = size_t(a.id);
    v.tokens[i] = a.content;
    if (v.types[i] != TokenType::unknown) {
      v.types[i] = a.special ? TokenType::control : TokenType::user_defined;
    }
  }
}

std::vector<AddedToken> added_tokens_from_config(const json& config) {
  std::vector<AddedToken> out;
  if (const auto it = config.find("added_tokens_decoder"); it != config.end() && it->is_object()) {
    for (const auto& [id, entry] : it->items()) {
      int32_t value = -1;
      const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
      if (ec != std::errc() || end != id.data() + id.size()) value = -1;  // rejected later
      out.push_back({value, entry.at("content").get<std::string>(), entry.value("special", false)});
    }
  }
  return out;
}

// Special token ids and add_bos/add_eos from tokenizer_config.json (overriding what the model file
// said), then config.json for BOS/EOS ids still missing.
void apply_config(Vocab& v, const json& config, const std::optional<json>& model_config,
                  std::string_view source) {
  const std::pair<const char*, int32_t Vocab::*> keys[] = {
      {"bos_token", &Vocab::bos},
      {"eos_token", &Vocab::eos},
      {"unk_token", &Vocab::unk},
      {"pad_token", &Vocab::pad},
  };
  for (const auto& [key, field] : keys) {
    const auto text = token_setting(config, key);
    if (!text) continue;
    if (const auto id = v.find(*text)) {
      v.*field = *id;
    } else if (field == &Vocab::bos || field == &Vocab::eos) {
      fail("{}: {} '{}' is not in the vocabulary", source, key, *text);
    }
  }
  if (model_config) {
    for (const auto& [key, field] :
         {std::pair{"bos_token_id", &Vocab::bos}, std::pair{"eos_token_id", &Vocab::eos}}) {
      const auto it = model_config->find(key);
      if (v.*field >= 0 || it == model_config->end()) continue;
      // eos_token_id may be a list; the first is the main one.
      const json& value = it->is_array() && !it->empty() ? it->front() : *it;
      if (value.is_number_integer() && value.get<int64_t>() >= 0 &&
          value.get<int64_t>() < v.size()) {
        v.*field = int32_t(value.get<int64_t>());
      }
    }
  }
  if (const auto it = config.find("add_bos_token"); it != config.end() && it->is_boolean()) {
    v.add_bos = it->get<bool>();
  }
  if (const auto it = config.find("add_eos_token"); it != config.end() && it->is_boolean()) {
    v.add_eos = it->get<bool>();
  }
}

Vocab from_sentencepiece(const fs::path& dir, const json& config) {
  const fs::path path = dir / "tokenizer.model";
  const SentencePieceModel model = SentencePieceModel::load(path);
  if (model.model_type != SentencePieceModel::bpe) {
    fail("{}: SentencePiece model type {} is not supported (only BPE, as used by Llama)",
         path.string(),
         model.model_type == SentencePieceModel::unigram ? "unigram"
                                                         : std::to_string(model.model_type));
  }
  Vocab v;
  v.kind = VocabKind::spm;
  v.pre = "default";
  for (const auto& piece : model.pieces) {
    v.tokens.push_back(piece.text);
    v.scores.push_back(piece.score);
    v.types.push_back(piece.type);
  }
  const auto id_or_none = [&](int32_t id) { return id >= 0 && id < v.size() ? id : -1; };
  v.unk = id_or_none(model.unk_id);
  v.bos = id_or_none(model.bos_id);
  v.eos = id_or_none(model.eos_id);
  v.pad = id_or_none(model.pad_id);
  // Note: SentencePiece's own text normalization (e.g. nmt_nfkc) is not applied; Llama-family
  // models use the identity normalizer, as llama.cpp assumes too.
  v.add_space_prefix = model.add_dummy_prefix;
  v.add_bos = v.bos >= 0;  // the Hugging Face LlamaTokenizer default

  if (const auto added = read_json_if_exists(dir / "added_tokens.json")) {
    std::vector<AddedToken> extra;
    for (const auto& [text, id] : added->items()) {
      if (id.get<int64_t>() >= v.size()) extra.push_back({id.get<int32_t>(), text, false});
    }
    std::sort(extra.begin(), extra.end(), [](auto& a, auto& b) { return a.id < b.id; });
    apply_added_tokens(v, extra, (dir / "added_tokens.json").string());
  }
  apply_added_tokens(v, added_tokens_from_config(config), (dir / "tokenizer_config.json").string());
  return v;
}

bool is_byte_level(const json& j) {
  return j.is_object() && j.value("type", std::string()) == "ByteLevel";
}

// The pre-tokenizer name for a tokenizer.json's "pre_tokenizer": plain ByteLevel (GPT-2's regex),
// or a Split with a regex we know followed by ByteLevel without its own regex.
std::string pre_tokenizer_name(const json& pre, std::string_view source) {
  if (is_byte_level(pre)) {
    if (pre.value("add_prefix_space", false)) {
      fail("{}: ByteLevel add_prefix_space is not supported", source);
    }
    if (pre.value("use_regex", true)) return "gpt-2";
  }
  if (pre.is_object() && pre.value("type", std::string()) == "Sequence") {
    const json& steps = pre.at("pretokenizers");
    if (steps.size() == 2 && steps[0].value("type", std::string()) == "Split" &&
        is_byte_level(steps[1]) && !steps[1].value("use_regex", true) &&
        !steps[1].value("add_prefix_space", false) && steps[0].contains("pattern") &&
        steps[0]["pattern"].contains("Regex")) {
      const std::string regex = steps[0]["pattern"]["Regex"].get<std::string>();
      if (const auto name = Pretokenizer::name_for_regex(regex)) return *name;
      fail("{}: the pre-tokenizer regex {} is not supported", source, json(regex).dump());
    }
  }
  fail("{}: pre-tokenizer {} is not supported (expected GPT-2, Llama-3 or Qwen2 byte-level BPE)",
       source, pre.dump().substr(0, 200));
}

// Whether the post-processor puts a special token first (Llama-3: <|begin_of_text|>); its id.
std::optional<int32_t> template_bos(const json& post, const Vocab& v) {
  if (!post.is_object()) return std::nullopt;
  const std::string type = post.value("type", std::string());
  if (type == "Sequence" && post.contains("processors")) {
    for (const json& p : post["processors"]) {
      if (auto id = template_bos(p, v)) return id;
    }
  }
  if (type != "TemplateProcessing" || !post.contains("single") || post["single"].empty()) {
    return std::nullopt;
  }
  const json& first = post["single"].front();
  if (!first.contains("SpecialToken")) return std::nullopt;
  return v.find(first["SpecialToken"].at("id").get<std::string>());
}

Vocab from_tokenizer_json(const json& tj, const json& config, std::string_view source) {
  const json& model = tj.at("model");
  const std::string type = model.value("type", std::string());
  if (type != "BPE") fail("{}: model type '{}' is not supported (only BPE)", source, type);

  Vocab v;
  v.kind = VocabKind::bpe;
  v.pre = pre_tokenizer_name(tj.value("pre_tokenizer", json()), source);

  std::map<int32_t, std::string> by_id;
  for (const auto& [text, id] : model.at("vocab").items()) by_id[id.get<int32_t>()] = text;
  for (const auto& [id, text] : by_id) {
    if (id < 0 || id > 10'000'000) fail("{}: token id {} is invalid", source, id);
    while (v.size() < id) {
      v.tokens.push_back(fmt::format("[PAD{}]", v.size()));
      v.types.push_back(TokenType::unused);
    }
    v.tokens.push_back(text);
    v.types.push_back(TokenType::normal);
  }
  for (const json& m : model.at("merges")) {
    // Older files write "left right", newer ones ["left", "right"].
    v.merges.push_back(m.is_array() ? m.at(0).get<std::string>() + " " + m.at(1).get<std::string>()
                                    : m.get<std::string>());
  }

  std::vector<AddedToken> added;
  if (const auto it = tj.find("added_tokens"); it != tj.end() && it->is_array()) {
    for (const json& a : *it) {
      added.push_back({a.at("id").get<int32_t>(), a.at("content").get<std::string>(),
                       a.value("special", false)});
    }
  }
  auto from_config = added_tokens_from_config(config);
  added.insert(added.end(), from_config.begin(), from_config.end());
  std::sort(added.begin(), added.end(), [](auto& a, auto& b) { return a.id < b.id; });
  apply_added_tokens(v, added, source);

  if (const auto bos = template_bos(tj.value("post_processor", json()), v)) {
    v.bos = *bos;
    v.add_bos = true;
  }
  return v;
}

}  // namespace

Vocab Vocab::from_hf_dir(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail("{}: not a directory", dir.string());
  const fs::path json_path = dir / "tokenizer.json";
  const fs::path config_path = dir / "tokenizer_config.json";
  try {
    const json config = read_json_if_exists(config_path).value_or(json::object());
    const auto model_config = read_json_if_exists(dir / "config.json");
    const auto tokenizer_json = read_json_if_exists(json_path);
    // A byte-level tokenizer.json wins; otherwise the SentencePiece model (Llama-2 style
    // directories ship both, and their tokenizer.json is a lossy re-expression of tokenizer.model).
    const bool byte_level_json =
        tokenizer_json && is_byte_level(tokenizer_json->value("decoder", json()));
    Vocab v;
    if (byte_level_json) {
      v = from_tokenizer_json(*tokenizer_json, config, json_path.string());
    } else if (fs::exists(dir / "tokenizer.model")) {
      v = from_sentencepiece(dir, config);
    } else if (tokenizer_json) {
      fail(
          "{}: only byte-level BPE tokenizer.json files are supported (a SentencePiece-style "
          "one needs its tokenizer.model)",
          json_path.string());
    } else {
      fail("{}: no tokenizer.model or tokenizer.json", dir.string());
    }
    apply_config(v, config, model_config, config_path.string());
    v.validate(dir.string());
    return v;
  } catch (const json::exception& e) {
    fail("{}: unexpected tokenizer file content: {}", dir.string(), e.what());
  }
}

}  // namespace ep
