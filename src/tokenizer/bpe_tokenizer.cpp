#include "tokenizer/bpe_tokenizer.h"

#include "core/error.h"

#include <queue>

namespace ep {
namespace {

struct Symbol {
  int32_t id = -1;  // -1: merged into its left neighbour
  int prev = -1, next = -1;
};

struct Candidate {
  int32_t rank;
  int left, right;
  int32_t left_id, right_id;  // ids when queued: stale when either symbol changed since
  bool operator<(const Candidate& o) const {
    // priority_queue pops the largest: lowest rank, then the leftmost pair.
    return rank > o.rank || (rank == o.rank && left > o.left);
  }
};

}  // namespace

BpeTokenizer::BpeTokenizer(const Vocab& vocab) : vocab_(vocab), pre_(vocab.pre) {
  for (int32_t id = 0; id < vocab.size(); ++id) {
    if (vocab.types[size_t(id)] == TokenType::normal)
      token_id_.emplace(vocab.tokens[size_t(id)], id);
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = token_id_.find(byte_map_.encode(uint8_t(b)));
    byte_id_[size_t(b)] = it == token_id_.end() ? -1 : it->second;
  }
  merges_.reserve(vocab.merges.size());
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const std::string_view m = vocab.merges[rank];
    // "left right"; a token may itself be a lone space in non-byte-level vocabularies, so the
    // separator is the first space after the first character.
    const size_t sep = m.find(' ', 1);
    if (sep == std::string_view::npos) fail("tokenizer: merge {} ('{}') has no space", rank, m);
    const auto left = token_id_.find(m.substr(0, sep));
    const auto right = token_id_.find(m.substr(sep + 1));
    const auto merged =
        token_id_.find(std::string(m.substr(0, sep)) + std::string(m.substr(sep + 1)));
    // Merges whose parts or result are not normal tokens can never apply; skip them.
    if (left == token_id_.end() || right == token_id_.end() || merged == token_id_.end()) continue;
    merges_.try_emplace(pair_key(left->second, right->second),
                        Merge{int32_t(rank), merged->second});
  }
}

void BpeTokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  for (const std::string_view word : pre_.split(text)) encode_word(word, out);
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const std::string mapped = byte_map_.encode(word);
  if (pre_.ignore_merges()) {
    if (const auto it = token_id_.find(mapped); it != token_id_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  for (const char c : word) {
    int32_t id = byte_id_[uint8_t(c)];
    if (id < 0) id = vocab_.unk;
    if (id < 0) fail("tokenizer: the vocabulary has no token for byte 0x{:02X}", uint8_t(c));
    sym.push_back({id, int(sym.size()) - 1, int(sym.size()) + 1});
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  std::priority_queue<Candidate> queue;
  const auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const int32_t l = sym[size_t(left)].id, r = sym[size_t(right)].id;
    if (const auto it = merges_.find(pair_key(l, r)); it != merges_.end()) {
      queue.push({it->second.rank, left, right, l, r});
    }
  };
  for (size_t i = 1; i < sym.size(); ++i) consider(int(i) - 1, int(i));

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = sym[size_t(c.left)];
    Symbol& r = sym[size_t(c.right)];
    if (l.id != c.left_id || r.id != c.right_id || l.next != c.right) continue;
    l.id = merges_.at(pair_key(c.left_id, c.right_id)).result;
    r.id = -1;
    l.next = r.next;
    if (r.next >= 0) sym[size_t(r.next)].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  for (int i = 0; i >= 0; i = sym[size_t(i)].next) out.push_back(sym[size_t(i)].id);
}

}  // namespace ep
