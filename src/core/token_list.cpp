#include "core/token_list.h"

#include "core/error.h"

#include <charconv>

namespace ep {
namespace {

bool is_separator(char c) {
  return c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

}  // namespace

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    if (is_separator(text[i])) {
      ++i;
      continue;
    }
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
    if (ec != std::errc() || v < 0 || v > INT32_MAX) {
      fail("--tokens: '{}' is not a token id (expected comma-separated non-negative integers)",
           text.substr(i, 20));
    }
    ids.push_back(int32_t(v));
    i = size_t(end - text.data());
    if (i < text.size() && !is_separator(text[i])) {
      fail("--tokens: unexpected character '{}' at position {}", text[i], i);
    }
  }
  if (ids.empty()) fail("--tokens: no token ids given");
  return ids;
}

void check_token_ids(std::span<const int32_t> ids, int64_t n_vocab, std::string_view what) {
  for (const int32_t id : ids) {
    if (id < 0 || id >= n_vocab) {
      fail("{}{}token id {} out of range (the model has {} tokens)", what, what.empty() ? "" : ": ",
           id, n_vocab);
    }
  }
}

}  // namespace ep
