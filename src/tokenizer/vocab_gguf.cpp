// Vocab <-> GGUF metadata, with the key names and defaults llama.cpp uses, so that our GGUF files
// and theirs are interchangeable.
#include "core/error.h"
#include "model/gguf.h"
#include "tokenizer/vocab.h"

namespace ep {
namespace {

constexpr std::string_view kModel = "tokenizer.ggml.model";
constexpr std::string_view kPre = "tokenizer.ggml.pre";
constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kScores = "tokenizer.ggml.scores";
constexpr std::string_view kTypes = "tokenizer.ggml.token_type";
constexpr std::string_view kMerges = "tokenizer.ggml.merges";
constexpr std::string_view kAddBos = "tokenizer.ggml.add_bos_token";
constexpr std::string_view kAddEos = "tokenizer.ggml.add_eos_token";
constexpr std::string_view kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";

struct IdKey {
  std::string_view key;
  int32_t Vocab::*field;
};
constexpr IdKey kIdKeys[] = {
    {"tokenizer.ggml.bos_token_id", &Vocab::bos},
    {"tokenizer.ggml.eos_token_id", &Vocab::eos},
    {"tokenizer.ggml.unknown_token_id", &Vocab::unk},
    {"tokenizer.ggml.padding_token_id", &Vocab::pad},
    {"tokenizer.ggml.eot_token_id", &Vocab::eot},
    {"tokenizer.ggml.eom_token_id", &Vocab::eom},
};

std::vector<std::string> string_array(const GgufFile& file, std::string_view key) {
  const auto& elements = file.get(key).as_array();
  std::vector<std::string> out;
  out.reserve(elements.size());
  for (const auto& e : elements) out.push_back(e.as_string());
  return out;
}

}  // namespace

Vocab Vocab::from_gguf(const GgufFile& file) {
  Vocab v;
  const std::string model = file.get_string(kModel);
  if (model == "llama") {
    v.kind = VocabKind::spm;
  } else if (model == "gpt2") {
    v.kind = VocabKind::bpe;
  } else {
    fail("{}: tokenizer model '{}' is not supported (supported: llama, gpt2)", file.name(), model);
  }
  if (const GgufValue* pre = file.find(kPre)) v.pre = pre->as_string();

  v.tokens = string_array(file, kTokens);
  if (const GgufValue* scores = file.find(kScores)) {
    for (const auto& e : scores->as_array()) v.scores.push_back(float(e.as_f64()));
  }
  if (const GgufValue* types = file.find(kTypes)) {
    for (const auto& e : types->as_array()) {
      const int64_t t = e.as_i64();
      if (t < 1 || t > 6) fail("{}: {} holds invalid token type {}", file.name(), kTypes, t);
      v.types.push_back(TokenType(t));
    }
  } else {
    v.types.assign(v.tokens.size(), TokenType::normal);
  }
  if (v.kind == VocabKind::bpe) v.merges = string_array(file, kMerges);

  // llama.cpp's defaults for SentencePiece vocabularies whose ids are not given: <unk> = 0,
  // <s> = 1, </s> = 2. Applied only where those tokens have the expected type, so a vocabulary
  // without them (written by write_to_gguf with the key left out) reads back unchanged.
  if (v.kind == VocabKind::spm) {
    const auto has_type = [&](int32_t id, TokenType t) {
      return id < v.size() && size_t(id) < v.types.size() && v.types[size_t(id)] == t;
    };
    if (has_type(0, TokenType::unknown)) v.unk = 0;
    if (has_type(1, TokenType::control)) v.bos = 1;
    if (has_type(2, TokenType::control)) v.eos = 2;
    v.add_space_prefix = true;
  }
  for (const auto& [key, field] : kIdKeys) {
    if (const GgufValue* value = file.find(key)) v.*field = int32_t(value->as_i64());
  }
  v.add_bos = v.kind == VocabKind::spm && v.bos >= 0;
  if (const GgufValue* b = file.find(kAddBos)) v.add_bos = b->as_bool();
  if (const GgufValue* b = file.find(kAddEos)) v.add_eos = b->as_bool();
  if (const GgufValue* b = file.find(kAddSpacePrefix)) v.add_space_prefix = b->as_bool();
  v.validate(file.name());
  return v;
}

void Vocab::write_to_gguf(GgufWriter& writer) const {
  validate("tokenizer");
  writer.set(std::string(kModel), GgufValue::string(kind == VocabKind::spm ? "llama" : "gpt2"));
  writer.set(std::string(kPre), GgufValue::string(pre));
  writer.set(std::string(kTokens), GgufValue::string_array(tokens));
  if (!scores.empty()) writer.set(std::string(kScores), GgufValue::f32_array(scores));
  std::vector<int32_t> type_ids(types.size());
  for (size_t i = 0; i < types.size(); ++i) type_ids[i] = int32_t(types[i]);
  writer.set(std::string(kTypes), GgufValue::i32_array(type_ids));
  if (kind == VocabKind::bpe) writer.set(std::string(kMerges), GgufValue::string_array(merges));
  for (const auto& [key, field] : kIdKeys) {
    if (this->*field >= 0) writer.set(std::string(key), GgufValue::u32(uint32_t(this->*field)));
  }
  writer.set(std::string(kAddBos), GgufValue::boolean(add_bos));
  writer.set(std::string(kAddEos), GgufValue::boolean(add_eos));
  writer.set(std::string(kAddSpacePrefix), GgufValue::boolean(add_space_prefix));
}

}  // namespace ep
