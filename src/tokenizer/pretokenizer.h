// Byte-level BPE pre-tokenizers: the regexes that cut text into words before BPE runs on each word
// (merges never cross a word boundary). Chosen by tokenizer.ggml.pre (the families and their
// regexes: pretokenizer_rules.cpp); matched with PCRE2 in UTF + UCP mode so \p{L}, \p{N} and \s
// follow the Unicode character classes, as in Hugging Face tokenizers. A family with several
// regexes applies them in turn, each within the pieces the previous ones left (a Hugging Face
// Sequence of Isolated Splits): a match and the text between matches are pieces of their own, and
// an empty match cuts the text where it matches.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

class Pretokenizer {
 public:
  // Throws ep::Error naming `name` and listing the known names when it is not one we know.
  explicit Pretokenizer(std::string_view name);
  ~Pretokenizer();
  Pretokenizer(const Pretokenizer&) = delete;
  Pretokenizer& operator=(const Pretokenizer&) = delete;

  // Splits valid UTF-8 into consecutive pieces that together cover `text` (views into it).
  std::vector<std::string_view> split(std::string_view text) const;

  const std::string& name() const { return name_; }
  // Llama-3 looks a whole word up in the vocabulary before merging (HF "ignore_merges").
  bool ignore_merges() const { return ignore_merges_; }

  // The pre-tokenizer name whose one regex is exactly `regex` (as written in a tokenizer.json
  // Split).
  static std::optional<std::string> name_for_regex(std::string_view regex);

  // Every tokenizer.ggml.pre value we accept (canonical names and aliases), sorted.
  static std::vector<std::string> known_names();

 private:
  struct Regex;
  std::string name_;
  bool ignore_merges_ = false;
  std::unique_ptr<Regex> regex_;
};

}  // namespace ep
