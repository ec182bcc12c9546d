// Picks the next token from a row of logits: greedy, or random after penalties and filters.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace ep {

struct SamplerParams {
  float temperature = 0.8f;       // <= 0: greedy (argmax after penalties)
  int32_t top_k = 40;             // keep the k most likely tokens; <= 0: all
  float top_p = 0.95f;            // keep the smallest set whose probability reaches p; >= 1: all
  float min_p = 0.05f;            // drop tokens below min_p * p(most likely); <= 0: none
  float repeat_penalty = 1.0f;    // CTRL-style: logit / r if positive, * r if negative; 1: off
  float presence_penalty = 0.0f;  // subtracted once from every token already seen; 0: off
  int32_t penalty_last_n = 64;    // how many recent tokens the penalties look at; < 0: all
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Throws ep::Error for out-of-range parameters.
  explicit Sampler(const SamplerParams& params);

  // Records a token of the context (prompt or generated) for the penalties.
  void accept(int32_t id);
  // The probability of every token after penalties, temperature, top-k, top-p and min-p (in
  // that order, as Hugging Face applies them); zero for filtered tokens. Greedy gives a one-hot.
  std::vector<float> distribution(std::span<const float> logits) const;
  // Draws from distribution(); the same seed and inputs give the same tokens.
  int32_t sample(std::span<const float> logits);

  const SamplerParams& params() const { return params_; }

 private:
  std::vector<float> penalised(std::span<const float> logits) const;
  double uniform();  // [0, 1), from the engine's bits alone: reproducible across standard libraries

  SamplerParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
};

}  // namespace ep
