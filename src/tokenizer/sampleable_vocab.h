// The ids a sampler may draw: a model's embedding may have more rows than the tokenizer has
// tokens, and padding tokens ("[PADn]", type unused) were never trained. Shared by `run` and the
// edge service so that both draw from the same set (and agree token for token).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ep {

class Tokenizer;

struct SampleableVocab {
  int64_t n = 0;                // sample from logits[0, n)
  std::vector<int32_t> masked;  // ids below n that must never be drawn

  // Sets the masked logits to -inf; returns the span to sample from.
  std::span<const float> apply(std::vector<float>& logits) const;
};

// `tokenizer` may be null (ids only): then every row of the model is sampleable.
SampleableVocab sampleable_vocab(const Tokenizer* tokenizer, int64_t model_vocab);

}  // namespace ep
