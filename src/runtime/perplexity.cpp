#include "runtime/perplexity.h"

#include "core/error.h"
#include "runtime/transformer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace ep {

namespace {

// -log softmax(logits)[target], in double so long sums stay exact to the last printed digit.
double negative_log_likelihood(const float* logits, int64_t n_vocab, int32_t target) {
  const float max = *std::max_element(logits, logits + n_vocab);
  double sum = 0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(double(logits[i]) - double(max));
  return std::log(sum) + double(max) - double(logits[target]);
}

}  // namespace

PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, int64_t ctx,
                            int64_t stride, ThreadPool& pool, const PerplexityProgress& progress) {
  const int64_t n = int64_t(tokens.size());
  if (n < 2) fail("perplexity: the text has {} token(s); at least 2 are needed", n);
  if (ctx < 2) fail("perplexity: --ctx {} is too small (at least 2)", ctx);
  if (stride < 1 || stride > ctx)
    fail("perplexity: --stride {} must be in 1..{} (--ctx)", stride, ctx);
  const int64_t n_vocab = model.hp.n_vocab;
  const int64_t n_windows = n <= ctx ? 1 : (n - ctx + stride - 1) / stride + 1;

  const auto start = std::chrono::steady_clock::now();
  Transformer tf(model, std::min(ctx, n), pool);
  std::vector<float> logits;
  PerplexityResult r;
  double nll = 0;
  int64_t prev_end = 0;
  for (int64_t w = 0; w < n_windows; ++w) {
    const int64_t begin = w * stride;
    const int64_t end = std::min(begin + ctx, n);
    const int64_t first_scored = std::max(prev_end, begin + 1);
    tf.reset();
    tf.forward(tokens.subspan(size_t(begin), size_t(end - begin)), logits, /*all_logits=*/true);
    for (int64_t pos = first_scored; pos < end; ++pos) {
      const int32_t target = tokens[size_t(pos)];
      nll += negative_log_likelihood(&logits[size_t((pos - 1 - begin) * n_vocab)], n_vocab, target);
    }
    r.n_scored += end - first_scored;
    r.n_evaluated += end - begin;
    r.n_windows = w + 1;
    r.mean_nll = nll / double(r.n_scored);
    r.perplexity = std::exp(r.mean_nll);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    prev_end = end;
    if (progress) progress(w, n_windows, r);
  }
  return r;
}

}  // namespace ep
