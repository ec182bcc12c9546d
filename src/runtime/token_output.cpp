#include "runtime/token_output.h"

#include <fmt/format.h>

namespace ep {

TokenOutput::TokenOutput(const Tokenizer* tokenizer, std::vector<std::string> stop, int max_tokens,
                         bool ignore_eos)
    : tokenizer_(tokenizer),
      stops_(std::move(stop)),
      max_tokens_(max_tokens),
      ignore_eos_(ignore_eos) {
  if (tokenizer_) detok_.emplace(*tokenizer_, /*skip_special=*/true);
  if (max_tokens_ <= 0) done_ = true;
}

std::string TokenOutput::push(int32_t id) {
  if (tokenizer_ && !ignore_eos_ && tokenizer_->is_eog(id)) {
    finish_reason_ = "stop";
    done_ = true;
    return {};
  }
  ids_.push_back(id);
  std::string shown =
      detok_ ? stops_.push(detok_->push(id)) : fmt::format("{}{}", ids_.size() > 1 ? "," : "", id);
  if (stops_.stopped()) {
    finish_reason_ = "stop";
    done_ = true;
  } else if (int(ids_.size()) >= max_tokens_) {
    done_ = true;
  }
  text_ += shown;
  return shown;
}

std::string TokenOutput::flush() {
  if (!detok_ || stops_.stopped()) return {};
  const std::string rest = stops_.push(detok_->flush());
  std::string tail = stops_.stopped() ? rest : rest + stops_.flush();
  if (stops_.stopped()) finish_reason_ = "stop";
  text_ += tail;
  return tail;
}

}  // namespace ep
