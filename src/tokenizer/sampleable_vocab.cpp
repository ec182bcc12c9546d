#include "tokenizer/sampleable_vocab.h"

#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>

namespace ep {

SampleableVocab sampleable_vocab(const Tokenizer* tokenizer, int64_t model_vocab) {
  SampleableVocab s;
  s.n = tokenizer ? std::min<int64_t>(model_vocab, tokenizer->n_vocab()) : model_vocab;
  for (int32_t id = 0; tokenizer && id < s.n; ++id) {
    if (tokenizer->vocab().types[size_t(id)] == TokenType::unused) s.masked.push_back(id);
  }
  return s;
}

std::span<const float> SampleableVocab::apply(std::vector<float>& logits) const {
  for (const int32_t id : masked) logits[size_t(id)] = -std::numeric_limits<float>::infinity();
  return {logits.data(), size_t(n)};
}

}  // namespace ep
