// Finds tokens written literally in the text before the BPE runs: user-defined (added) tokens
// always, control tokens such as <s> or <|im_end|> only when the caller asks (parse_special), so
// that untrusted text cannot inject them by default.
#pragma once

#include "tokenizer/vocab.h"

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ep {

class SpecialTokenMatcher {
 public:
  explicit SpecialTokenMatcher(const Vocab& vocab);  // `vocab` must outlive the matcher

  struct Fragment {
    std::string_view text;  // the plain text, or the matched token's text
    int32_t token = -1;     // >= 0: this fragment is that token
  };
  // Cuts `text` into plain-text runs and matched tokens, leftmost-longest match first. Plain runs
  // are never empty.
  std::vector<Fragment> split(std::string_view text, bool parse_special) const;

 private:
  const Vocab& vocab_;
  std::array<std::vector<int32_t>, 256> by_first_byte_;  // candidates, longest first
};

}  // namespace ep
