// The pre-tokenizer families of byte-level BPE vocabularies: for each tokenizer.ggml.pre value, the
// regexes of the model family's tokenizer.json pre_tokenizer, applied in order (each one splits
// every piece the previous ones left; matches and the text between them both become pieces).
#pragma once

#include <string_view>
#include <vector>

namespace ep {

struct PretokenizerRules {
  std::string_view name;                  // canonical name, as our converter writes it
  std::vector<std::string_view> aliases;  // further tokenizer.ggml.pre values meaning it
  std::vector<std::string_view> regexes;  // PCRE2 syntax (UTF + UCP), applied in order
  bool ignore_merges = false;             // a whole word found in the vocabulary is one token
};

// Every family, the most common first.
const std::vector<PretokenizerRules>& pretokenizer_rules();

// The family named `name` (its canonical name or an alias); nullptr if none.
const PretokenizerRules* find_pretokenizer_rules(std::string_view name);

}  // namespace ep
