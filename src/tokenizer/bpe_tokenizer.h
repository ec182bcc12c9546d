// Byte-level BPE (tokenizer.ggml.model = "gpt2"): the pre-tokenizer regex cuts the text into words,
// each word's bytes are mapped to GPT-2's printable characters, and adjacent tokens are merged by
// merge rank (earliest merge first) until no listed merge applies.
#pragma once

#include "tokenizer/pretokenizer.h"
#include "tokenizer/string_map.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

#include <array>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ep {

class BpeTokenizer {
 public:
  // `vocab` must outlive the tokenizer. Throws ep::Error for an unknown pre-tokenizer.
  explicit BpeTokenizer(const Vocab& vocab);

  // Appends the ids of `text`, one run of plain text (special tokens already split off).
  void encode(std::string_view text, std::vector<int32_t>& out) const;

  // Token text -> bytes (decoding).
  const ByteLevelMap& byte_map() const { return byte_map_; }

 private:
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }

  const Vocab& vocab_;
  Pretokenizer pre_;
  ByteLevelMap byte_map_;
  StringMap<int32_t> token_id_;                 // normal tokens by text
  std::array<int32_t, 256> byte_id_;            // the token of each single byte, -1 if none
  std::unordered_map<uint64_t, Merge> merges_;  // (left id, right id) -> rank and merged id
};

}  // namespace ep
