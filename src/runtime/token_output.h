// What a client sees of the tokens a sequence samples: text detokenized as it comes (complete
// UTF-8 only), held back while it could still be the start of a stop string, and the end of
// generation — an end-of-generation token (never shown), a stop string (never shown) or the
// token limit. Without a tokenizer the text is the ids, comma-separated. Shared by generate()
// and the serving engine, so both end and show a sequence the same way.
#pragma once

#include "runtime/stop_strings.h"
#include "tokenizer/tokenizer.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ep {

class TokenOutput {
 public:
  // Throws ep::Error for an invalid stop string.
  // With `ignore_eos` an end-of-generation token is shown like any other and only the stop
  // strings and the limit end generation (load tests that need outputs of a set length).
  TokenOutput(const Tokenizer* tokenizer, std::vector<std::string> stop, int max_tokens,
              bool ignore_eos = false);

  // Adds a sampled token and returns the text it makes visible (often empty). After the token
  // that ends generation, done() is true and push() must not be called again.
  std::string push(int32_t id);
  // At the end (done, or the client gone): the text still held back, unless a stop string ended
  // generation. Call once.
  std::string flush();

  bool done() const { return done_; }
  const std::string& finish_reason() const { return finish_reason_; }  // "stop" or "length"
  const std::vector<int32_t>& ids() const { return ids_; }             // shown tokens (no EOG)
  const std::string& text() const { return text_; }                    // everything returned

 private:
  const Tokenizer* tokenizer_;
  StopStrings stops_;
  std::optional<StreamingDetokenizer> detok_;
  int max_tokens_;
  bool ignore_eos_;
  bool done_ = false;
  std::string finish_reason_ = "length";
  std::vector<int32_t> ids_;
  std::string text_;
};

}  // namespace ep
