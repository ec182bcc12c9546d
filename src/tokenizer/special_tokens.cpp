#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace ep {

SpecialTokenMatcher::SpecialTokenMatcher(const Vocab& vocab) : vocab_(vocab) {
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const TokenType t = vocab.types[size_t(id)];
    const std::string& text = vocab.tokens[size_t(id)];
    if (text.empty()) continue;
    if (t == TokenType::control || t == TokenType::unknown || t == TokenType::user_defined) {
      by_first_byte_[uint8_t(text[0])].push_back(id);
    }
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
      return vocab.tokens[size_t(a)].size() > vocab.tokens[size_t(b)].size();
    });
  }
}

std::vector<SpecialTokenMatcher::Fragment> SpecialTokenMatcher::split(std::string_view text,
                                                                      bool parse_special) const {
  std::vector<Fragment> out;
  size_t plain_from = 0;
  for (size_t i = 0; i < text.size();) {
    int32_t found = -1;
    for (const int32_t id : by_first_byte_[uint8_t(text[i])]) {
      if (!parse_special && vocab_.types[size_t(id)] != TokenType::user_defined) continue;
      if (text.substr(i).starts_with(vocab_.tokens[size_t(id)])) {
        found = id;
        break;
      }
    }
    if (found < 0) {
      ++i;
      continue;
    }
    if (i > plain_from) out.push_back({text.substr(plain_from, i - plain_from), -1});
    const size_t len = vocab_.tokens[size_t(found)].size();
    out.push_back({text.substr(i, len), found});
    i += len;
    plain_from = i;
  }
  if (plain_from < text.size()) out.push_back({text.substr(plain_from), -1});
  return out;
}

}  // namespace ep
