// SentencePiece-style BPE (tokenizer.ggml.model = "llama"): spaces become U+2581, the text is cut
// into characters, and adjacent pieces are merged greedily, highest vocabulary score first. What is
// left that is not a token is written as <0xNN> byte tokens (or the unknown token).
#pragma once

#include "tokenizer/string_map.h"
#include "tokenizer/vocab.h"

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ep {

class SpmTokenizer {
 public:
  explicit SpmTokenizer(const Vocab& vocab);  // `vocab` must outlive the tokenizer

  // Appends the ids of `text`, one run of plain text (special tokens already split off).
  // `space_prefix` puts a space in front first (SentencePiece's add_dummy_prefix).
  void encode(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const;

 private:
  void emit(std::string_view piece,
            const StringMap<std::pair<std::string_view, std::string_view>>& unused_splits,
            std::vector<int32_t>& out) const;

  const Vocab& vocab_;
  StringMap<int32_t> mergeable_;         // normal and unused pieces: the ones merging can produce
  std::array<int32_t, 256> byte_token_;  // <0xNN> ids, -1 where missing
};

}  // namespace ep
