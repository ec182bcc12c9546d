// Perplexity of a model on a token sequence with a sliding window, the way transformers'
// documentation defines it: windows of `ctx` tokens start every `stride` tokens; each token is
// scored once, by the first window that reaches past the previous window's end, so it sees as
// much context as that window gives (at least ctx - stride tokens once the first window is full).
// Token 0 (normally BOS) is never scored. tools/train/train.py computes the same quantity.
#pragma once

#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "model/model.h"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace ep {

struct PerplexityResult {
  double perplexity = 0;  // exp(mean negative log-likelihood)
  double mean_nll = 0;    // nats per scored token
  int64_t n_scored = 0;   // tokens scored (n_tokens - 1)
  int64_t n_windows = 0;
  int64_t n_evaluated = 0;  // tokens run through the model (windows overlap)
  double seconds = 0;
  std::vector<int32_t> top1;  // with keep_top1: the most likely token at each scored position
};

// The keys and values of a layer of a window's first `split` tokens, [n_tokens, n_kv_heads *
// head_dim] each, changed in place (a KV codec's round trip).
using KvTransform = std::function<void(int64_t layer, float* k, float* v, int64_t n_tokens)>;

struct PerplexityOptions {
  kernels::Precision precision = kernels::Precision::Exact;
  // split > 0: each window's first `split` tokens are computed as a cloud prompt whose KV goes
  // through kv_transform; the rest of the window attends it as a prefix segment, the way an
  // edge attends a cloud prompt's KV. Their scores show what the transform costs.
  int64_t split = 0;
  KvTransform kv_transform;
  bool keep_top1 = false;
};

// Called after each window with the running result.
using PerplexityProgress =
    std::function<void(int64_t window, int64_t n_windows, const PerplexityResult& so_far)>;

// Throws ep::Error for fewer than 2 tokens, ctx < 2, or a stride outside 1..ctx.
PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, int64_t ctx,
                            int64_t stride, ThreadPool& pool,
                            const PerplexityProgress& progress = nullptr);
PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, int64_t ctx,
                            int64_t stride, ThreadPool& pool, const PerplexityOptions& options,
                            const PerplexityProgress& progress = nullptr);

}  // namespace ep
