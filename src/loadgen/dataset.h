// The prompts of a benchmark run: each a text, its length in tokens and the number of tokens to
// generate for it. Lengths are counted by a TokenCounter: the model's tokenizer when the user
// names one, else approx_token_count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ep::loadgen {

struct BenchPrompt {
  std::string text;
  size_t prompt_len = 0;  // tokens of `text`
  size_t output_len = 0;  // tokens to generate (max_tokens)
};

using TokenCounter = std::function<size_t(std::string_view)>;

// Without a tokenizer: one token per 4 bytes, rounded up (OpenAI's rule of thumb for English;
// Llama-family tokenizers give 3.5 to 4.5 bytes per token on English prose), at least 1 for a
// non-empty text.
size_t approx_token_count(std::string_view text);

// A text of `n_tokens` tokens as `count` measures it (exactly, unless a word boundary makes the
// count jump past it, then the nearest below): random words from a fixed English list, drawn
// from `seed`, so that different seeds share no prefix.
std::string random_text(size_t n_tokens, uint64_t seed, const TokenCounter& count);

struct RandomSpec {
  size_t input_len = 1024;
  size_t output_len = 128;
  double range_ratio = 0;  // lengths uniform in [len * (1 - r), len * (1 + r)]
};

// `n` prompts of random words, lengths drawn as vLLM's random dataset draws them (integers
// uniform in the range above, at least 1). ep::Error for a range ratio outside [0, 1).
std::vector<BenchPrompt> random_prompts(const RandomSpec& spec, size_t n, uint64_t seed,
                                        const TokenCounter& count);

}  // namespace ep::loadgen
