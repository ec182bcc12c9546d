// The tokenizer facade: text <-> token ids for SentencePiece-style ("llama") and byte-level BPE
// ("gpt2") vocabularies, loaded from GGUF metadata or a Hugging Face model directory.
#pragma once

#include "tokenizer/vocab.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

class GgufFile;
class SpmTokenizer;
class BpeTokenizer;
class SpecialTokenMatcher;

class Tokenizer {
 public:
  // Throws ep::Error for an unsupported model kind or pre-tokenizer, or an inconsistent vocabulary.
  explicit Tokenizer(Vocab vocab);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;  // the algorithms point into vocab_
  Tokenizer& operator=(const Tokenizer&) = delete;

  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& file);
  static std::unique_ptr<Tokenizer> from_hf_dir(const std::filesystem::path& dir);

  // `text` must be valid UTF-8 (ep::Error otherwise). `add_bos` prepends the BOS token (pass
  // add_bos_default() for the model's own choice); EOS is never added. With `parse_special`,
  // control tokens written in the text (e.g. "<|im_start|>") become those tokens; without it they
  // are tokenized as ordinary text. User-defined (added) tokens are always recognised.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const;

  // The text of `ids`. Control/unknown tokens are written as their text unless `skip_special`.
  // For SentencePiece vocabularies with add_space_prefix, the space the prefix put in front of the
  // first word is removed. The bytes may be invalid UTF-8 if `ids` ends inside a character.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // The bytes this token contributes (control tokens as their text, no leading-space removal).
  std::string token_to_piece(int32_t id) const;

  int32_t bos() const { return vocab_.bos; }
  int32_t eos() const { return vocab_.eos; }
  int32_t n_vocab() const { return vocab_.size(); }
  bool add_bos_default() const { return vocab_.add_bos; }
  // End of generation: EOS, EOT/EOM, and control tokens that end a turn (<|im_end|>,
  // <|eot_id|>...).
  bool is_eog(int32_t id) const;
  const Vocab& vocab() const { return vocab_; }
  // The id of the token whose text is exactly `text` (lowest id if several).
  std::optional<int32_t> find_token(std::string_view text) const;

 private:
  friend class StreamingDetokenizer;
  // Decoding one token in context: `at_start` is true until the first token that produced text.
  std::string piece(int32_t id, bool skip_special, bool& at_start) const;

  Vocab vocab_;
  std::unique_ptr<SpmTokenizer> spm_;
  std::unique_ptr<BpeTokenizer> bpe_;
  std::unique_ptr<SpecialTokenMatcher> specials_;
  std::vector<bool> eog_;
  std::vector<int32_t> by_text_;  // ids sorted by token text, for find_token
};

// Turns ids into text as they are generated. Output is always complete, valid UTF-8: bytes of a
// character split over several tokens (e.g. <0xE2><0x82><0xAC>) are held back until it is complete;
// bytes that can never form a character come out as U+FFFD. The concatenated output equals
// decode(ids, skip_special) whenever that is valid UTF-8.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special = false);
  std::string push(int32_t id);
  // Returns what is held back (an unfinished character becomes U+FFFD) and starts a new stream.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace ep
