#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace ep {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamingDetokenizer::push(int32_t id) {
  pending_ += tokenizer_.piece(id, skip_special_, at_start_);
  const size_t n = utf8_emittable_prefix(pending_);
  std::string out = utf8_replace_invalid(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string StreamingDetokenizer::flush() {
  std::string out = utf8_replace_invalid(pending_);
  pending_.clear();
  at_start_ = true;
  return out;
}

}  // namespace ep
