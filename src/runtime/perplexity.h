// Perplexity of a model on a token sequence with a sliding window, the way transformers'
// documentation defines it: windows of `ctx` tokens start every `stride` tokens; each token is
// scored once, by the first window that reaches past the previous window's end, so it sees as
// much context as that window gives (at least ctx - stride tokens once the first window is full).
// Token 0 (normally BOS) is never scored. tools/train/train.py computes the same quantity.
#pragma once

#include "core/thread_pool.h"
#include "model/model.h"

#include <cstdint>
#include <functional>
#include <span>

namespace ep {

struct PerplexityResult {
  double perplexity = 0;  // exp(mean negative log-likelihood)
  double mean_nll = 0;    // nats per scored token
  int64_t n_scored = 0;   // tokens scored (n_tokens - 1)
  int64_t n_windows = 0;
  int64_t n_evaluated = 0;  // tokens run through the model (windows overlap)
  double seconds = 0;
};

// Called after each window with the running result.
using PerplexityProgress =
    std::function<void(int64_t window, int64_t n_windows, const PerplexityResult& so_far)>;

// Throws ep::Error for fewer than 2 tokens, ctx < 2, or a stride outside 1..ctx.
PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, int64_t ctx,
                            int64_t stride, ThreadPool& pool,
                            const PerplexityProgress& progress = nullptr);

}  // namespace ep
