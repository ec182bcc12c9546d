#include "tokenizer/spm_tokenizer.h"

#include "core/error.h"
#include "tokenizer/unicode.h"

#include <queue>

namespace ep {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// A run of the text: a character at first, then the result of merges. Runs form a linked list.
struct Symbol {
  size_t start = 0, len = 0;  // len 0: merged into its left neighbour
  int prev = -1, next = -1;
};

struct Candidate {
  float score;
  int left, right;  // symbol indices
  size_t len;       // combined length when queued: stale when the symbols changed since
  bool operator<(const Candidate& o) const {
    // priority_queue pops the largest: highest score, then the leftmost pair.
    return score < o.score || (score == o.score && left > o.left);
  }
};

}  // namespace

SpmTokenizer::SpmTokenizer(const Vocab& vocab) : vocab_(vocab) {
  byte_token_.fill(-1);
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const std::string& text = vocab.tokens[size_t(id)];
    switch (vocab.types[size_t(id)]) {
      case TokenType::normal:
      case TokenType::unused:
        mergeable_.emplace(text, id);  // first id wins for duplicate texts
        break;
      case TokenType::byte: {
        const int value = byte_token_value(text);
        if (value >= 0 && byte_token_[size_t(value)] < 0) byte_token_[size_t(value)] = id;
        break;
      }
      default:
        break;
    }
  }
}

void SpmTokenizer::encode(std::string_view text, bool space_prefix,
                          std::vector<int32_t>& out) const {
  std::string s;
  s.reserve(text.size() * 3 + 3);
  if (space_prefix) s += kSpaceMarker;
  for (const char c : text) {
    if (c == ' ') {
      s += kSpaceMarker;
    } else {
      s += c;
    }
  }
  if (s.empty()) return;

  std::vector<Symbol> sym;
  for (size_t i = 0; i < s.size();) {
    const size_t n = std::max<size_t>(1, utf8_char_length(std::string_view(s).substr(i)));
    sym.push_back({i, n, int(sym.size()) - 1, int(sym.size()) + 1});
    i += n;
  }
  sym.back().next = -1;

  const std::string_view sv(s);
  std::priority_queue<Candidate> queue;
  // Unused pieces may be formed on the way to a longer piece; if one survives to the end it is
  // split back into the two pieces it was made of (as SentencePiece does).
  StringMap<std::pair<std::string_view, std::string_view>> unused_splits;
  const auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t len = sym[size_t(left)].len + sym[size_t(right)].len;
    const std::string_view merged = sv.substr(sym[size_t(left)].start, len);
    const auto it = mergeable_.find(merged);
    if (it == mergeable_.end()) return;
    const auto id = size_t(it->second);
    queue.push({vocab_.scores.empty() ? 0.0f : vocab_.scores[id], left, right, len});
    if (vocab_.types[id] == TokenType::unused) {
      unused_splits.try_emplace(std::string(merged), merged.substr(0, sym[size_t(left)].len),
                                merged.substr(sym[size_t(left)].len));
    }
  };
  for (size_t i = 1; i < sym.size(); ++i) consider(int(i) - 1, int(i));

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = sym[size_t(c.left)];
    Symbol& r = sym[size_t(c.right)];
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }

  for (int i = 0; i >= 0; i = sym[size_t(i)].next) {
    emit(sv.substr(sym[size_t(i)].start, sym[size_t(i)].len), unused_splits, out);
  }
}

void SpmTokenizer::emit(
    std::string_view piece,
    const StringMap<std::pair<std::string_view, std::string_view>>& unused_splits,
    std::vector<int32_t>& out) const {
  if (const auto it = mergeable_.find(piece); it != mergeable_.end()) {
    if (vocab_.types[size_t(it->second)] != TokenType::unused) {
      out.push_back(it->second);
      return;
    }
    if (const auto split = unused_splits.find(piece); split != unused_splits.end()) {
      emit(split->second.first, unused_splits, out);
      emit(split->second.second, unused_splits, out);
      return;
    }
  }
  // Not a token (only single characters get here): byte fallback, else one unknown token.
  bool all_bytes = true;
  for (const char c : piece) all_bytes = all_bytes && byte_token_[uint8_t(c)] >= 0;
  if (all_bytes) {
    for (const char c : piece) out.push_back(byte_token_[uint8_t(c)]);
  } else if (vocab_.unk >= 0) {
    out.push_back(vocab_.unk);
  } else {
    fail("tokenizer: no token for the text '{}' and no unknown token", piece);
  }
}

}  // namespace ep
