#include "tokenizer/vocab.h"

#include "core/error.h"

namespace ep {

int byte_token_value(std::string_view text) {
  if (text.size() != 6 || !text.starts_with("<0x") || text[5] != '>') return -1;
  int value = 0;
  for (const char c : text.substr(3, 2)) {
    const int digit = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                             : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

bool Vocab::is_special(int32_t id) const {
  const TokenType t = types[size_t(id)];
  return t == TokenType::control || t == TokenType::unknown;
}

std::optional<int32_t> Vocab::find(std::string_view text) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == text) return int32_t(i);
  }
  return std::nullopt;
}

void Vocab::validate(std::string_view source) const {
  if (tokens.empty()) fail("{}: the tokenizer has no tokens", source);
  if (types.size() != tokens.size()) {
    fail("{}: {} token types for {} tokens", source, types.size(), tokens.size());
  }
  if (!scores.empty() && scores.size() != tokens.size()) {
    fail("{}: {} token scores for {} tokens", source, scores.size(), tokens.size());
  }
  for (size_t i = 0; i < types.size(); ++i) {
    const auto t = uint8_t(types[i]);
    if (t < 1 || t > 6) fail("{}: token {} has invalid type {}", source, i, t);
  }
  const std::pair<const char*, int32_t> ids[] = {{"bos", bos},     {"eos", eos}, {"unknown", unk},
                                                 {"padding", pad}, {"eot", eot}, {"eom", eom}};
  for (const auto& [what, id] : ids) {
    if (id < -1 || id >= size()) {
      fail("{}: {} token id {} is out of range (vocabulary has {} tokens)", source, what, id,
           size());
    }
  }
  if (add_bos && bos < 0) fail("{}: add_bos_token is set but there is no BOS token", source);
  if (add_eos && eos < 0) fail("{}: add_eos_token is set but there is no EOS token", source);
}

}  // namespace ep
