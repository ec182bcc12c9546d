#include "runtime/perplexity.h"

#include "core/error.h"
#include "runtime/transformer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
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

// Logits of every token of a window: the first `split` computed as a cloud prompt whose KV is
// transformed, the rest against that KV as a prefix segment.
void split_window(const Model& model, std::span<const int32_t> window, const PerplexityOptions& o,
                  ThreadPool& pool, std::vector<float>& logits) {
  const int64_t split = o.split;
  const auto& hp = model.hp;
  auto segment = std::make_shared<KvSegment>(hp.n_layer, split, hp.n_head_kv, hp.head_dim);
  Transformer cloud(model, split, pool);
  cloud.set_precision(o.precision);
  std::vector<float> k, v;
  cloud.set_layer_sink([&](int64_t layer, const float* lk, const float* lv, int64_t n) {
    const size_t count = size_t(n * hp.n_head_kv * hp.head_dim);
    k.assign(lk, lk + count);
    v.assign(lv, lv + count);
    if (o.kv_transform) o.kv_transform(layer, k.data(), v.data(), n);
    segment->publish_layer(layer, k.data(), v.data());
  });
  cloud.forward(window.first(size_t(split)), logits, true);
  Transformer edge(model, int64_t(window.size()) - split, pool, segment);
  edge.set_precision(o.precision);
  std::vector<float> rest;
  edge.forward(window.subspan(size_t(split)), rest, true);
  logits.insert(logits.end(), rest.begin(), rest.end());
}

}  // namespace

PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, int64_t ctx,
                            int64_t stride, ThreadPool& pool, const PerplexityProgress& progress) {
  return perplexity(model, tokens, ctx, stride, pool, PerplexityOptions{}, progress);
}

PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, int64_t ctx,
                            int64_t stride, ThreadPool& pool, const PerplexityOptions& options,
                            const PerplexityProgress& progress) {
  const int64_t n = int64_t(tokens.size());
  if (n < 2) fail("perplexity: the text has {} token(s); at least 2 are needed", n);
  if (ctx < 2) fail("perplexity: --ctx {} is too small (at least 2)", ctx);
  if (stride < 1 || stride > ctx)
    fail("perplexity: --stride {} must be in 1..{} (--ctx)", stride, ctx);
  if (options.split < 0 || options.split >= ctx) {
    fail("perplexity: --split {} must be in 0..{} (below --ctx)", options.split, ctx - 1);
  }
  const int64_t n_vocab = model.hp.n_vocab;
  const int64_t n_windows = n <= ctx ? 1 : (n - ctx + stride - 1) / stride + 1;

  const auto start = std::chrono::steady_clock::now();
  Transformer tf(model, std::min(ctx, n), pool);
  tf.set_precision(options.precision);
  std::vector<float> logits;
  PerplexityResult r;
  double nll = 0;
  int64_t prev_end = 0;
  for (int64_t w = 0; w < n_windows; ++w) {
    const int64_t begin = w * stride;
    const int64_t end = std::min(begin + ctx, n);
    const int64_t first_scored = std::max(prev_end, begin + 1);
    const auto window = tokens.subspan(size_t(begin), size_t(end - begin));
    if (options.split > 0 && end - begin > options.split) {
      split_window(model, window, options, pool, logits);
    } else {
      tf.reset();
      tf.forward(window, logits, /*all_logits=*/true);
    }
    for (int64_t pos = first_scored; pos < end; ++pos) {
      const int32_t target = tokens[size_t(pos)];
      const float* row = &logits[size_t((pos - 1 - begin) * n_vocab)];
      nll += negative_log_likelihood(row, n_vocab, target);
      if (options.keep_top1) r.top1.push_back(int32_t(std::max_element(row, row + n_vocab) - row));
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
