#include "runtime/transformer.h"

#include "core/error.h"
#include "core/quant.h"
#include "core/token_list.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/rope.h"

#include <chrono>
#include <cmath>

namespace ep {
namespace {

void add_bias(float* y, const std::vector<float>& bias, int64_t n_rows) {
  if (bias.empty()) return;
  const auto width = int64_t(bias.size());
  for (int64_t r = 0; r < n_rows; ++r) kernels::add_inplace(y + r * width, bias.data(), width);
}

}  // namespace

Transformer::Transformer(const Model& model, int64_t n_ctx, ThreadPool& pool,
                         std::shared_ptr<const KvSegment> prefix)
    : model_(model),
      hp_(model.hp),
      pool_(pool),
      cache_(model.hp.n_layer, n_ctx, model.hp.n_head_kv, model.hp.head_dim),
      prefix_(std::move(prefix)) {
  if (model.layers.empty() || int64_t(model.layers.size()) != hp_.n_layer)
    fail("model has {} layers of weights for a layer count of {}", model.layers.size(),
         hp_.n_layer);
  if (prefix_) {
    if (prefix_->n_layers() != hp_.n_layer || prefix_->row_size() != hp_.n_head_kv * hp_.head_dim) {
      fail("prefix KV has {} layers x {} values per token; the model needs {} x {}",
           prefix_->n_layers(), prefix_->row_size(), hp_.n_layer, hp_.n_head_kv * hp_.head_dim);
    }
    n_prefix_ = prefix_->n_tokens();
    n_past_ = n_prefix_;
  }
  const double linear =
      hp_.rope_scaling.type == RopeScaling::Type::Linear ? hp_.rope_scaling.factor : 1.0;
  inv_freq_ = kernels::rope_inv_freq(hp_.head_dim, hp_.rope_theta, model.rope_freq_factors, linear);
}

void Transformer::forward(std::span<const int32_t> tokens, std::vector<float>& logits,
                          bool all_logits) {
  const auto n = int64_t(tokens.size());
  if (n == 0) fail("no tokens to process");
  if (n_past_ - n_prefix_ + n > cache_.n_ctx()) {
    fail("context full: {} tokens already, {} more would exceed the context of {}",
         n_past_ - n_prefix_, n, cache_.n_ctx());
  }
  check_token_ids(tokens, hp_.n_vocab);

  const int64_t d = hp_.n_embd;
  x_.resize(size_t(n * d));
  xn_.resize(size_t(n * d));
  positions_.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    dequantize_row(model_.tok_embd.type, model_.tok_embd.row(tokens[size_t(i)]), &x_[size_t(i * d)],
                   d);
    positions_[size_t(i)] = n_past_ + i;
  }

  // The layer loop: x += attention(norm(x)); x += ffn(norm(x)).
  timings_.assign(size_t(hp_.n_layer), {});
  for (int64_t l = 0; l < hp_.n_layer; ++l) {
    const auto start = std::chrono::steady_clock::now();
    const LayerWeights& w = model_.layers[size_t(l)];
    attention_block(w, l, n);
    ffn_block(w, l, n);
    timings_[size_t(l)].compute_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() -
        timings_[size_t(l)].wait_s;
  }

  // Output head, for every position or only the last.
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  kernels::rmsnorm(&x_[size_t(first * d)], model_.output_norm.data(), xn_.data(), rows, d,
                   hp_.rms_norm_eps);
  logits.resize(size_t(rows * hp_.n_vocab));
  kernels::matmul(model_.output, xn_.data(), rows, logits.data(), pool_, precision_,
                  qkv_weights(0));
  n_past_ += n;
}

std::array<const MatrixView*, 3> Transformer::qkv_weights(int64_t layer) const {
  const LayerWeights& w = model_.layers[size_t(layer)];
  return {&w.wq, &w.wk, &w.wv};
}

void Transformer::attention_block(const LayerWeights& w, int64_t layer, int64_t n) {
  const int64_t d = hp_.n_embd, hd = hp_.head_dim;
  const int64_t q_dim = hp_.n_head * hd, kv_dim = hp_.n_head_kv * hd;
  q_.resize(size_t(n * q_dim));
  k_.resize(size_t(n * kv_dim));
  v_.resize(size_t(n * kv_dim));
  attn_.resize(size_t(n * q_dim));
  lse_.resize(size_t(n * hp_.n_head));

  kernels::rmsnorm(x_.data(), w.attn_norm.data(), xn_.data(), n, d, hp_.rms_norm_eps, pool_);
  const kernels::MatmulOut qkv[] = {{&w.wq, q_.data()}, {&w.wk, k_.data()}, {&w.wv, v_.data()}};
  const MatrixView* const wo[] = {&w.wo};
  kernels::matmul_multi(qkv, xn_.data(), n, pool_, precision_, wo);
  add_bias(q_.data(), w.bq, n);
  add_bias(k_.data(), w.bk, n);
  add_bias(v_.data(), w.bv, n);
  const auto pairs = hp_.rope_layout == RopeLayout::RotateHalf ? kernels::RotaryPairs::Halves
                                                               : kernels::RotaryPairs::Adjacent;
  kernels::rope(q_.data(), n, hp_.n_head, hd, positions_.data(), inv_freq_, pairs);
  kernels::rope(k_.data(), n, hp_.n_head_kv, hd, positions_.data(), inv_freq_, pairs);

  // Append this batch's keys and values to the sequence's own cache.
  const int64_t local_past = n_past_ - n_prefix_;
  std::copy(k_.begin(), k_.end(), cache_.k(layer, local_past));
  std::copy(v_.begin(), v_.end(), cache_.v(layer, local_past));
  if (layer_sink_) layer_sink_(layer, k_.data(), v_.data(), n);

  // Attention over the sequence's own keys (causal), then, if there is a prefix, over the
  // prefix's keys (all earlier than ours), merged exactly through the log-sum-exps.
  kernels::AttentionArgs a;
  a.q = q_.data();
  a.n_q = n;
  a.q_pos0 = n_past_;
  a.k = cache_.k(layer, 0);
  a.v = cache_.v(layer, 0);
  a.n_kv = local_past + n;
  a.k_pos0 = n_prefix_;
  a.n_head = hp_.n_head;
  a.n_head_kv = hp_.n_head_kv;
  a.head_dim = hd;
  a.scale = float(1.0 / std::sqrt(double(hd)));
  a.window = hp_.sliding_window;
  a.out = attn_.data();
  a.lse = lse_.data();
  kernels::attention(a, pool_);
  if (prefix_) {
    timings_[size_t(layer)].wait_s =
        std::chrono::duration<double>(prefix_->wait_layer(layer)).count();
    attn_local_.resize(attn_.size());
    lse_local_.resize(lse_.size());
    std::swap(attn_, attn_local_);
    std::swap(lse_, lse_local_);
    a.k = prefix_->k(layer);
    a.v = prefix_->v(layer);
    a.n_kv = n_prefix_;
    a.k_pos0 = 0;
    a.out = attn_.data();
    a.lse = lse_.data();
    kernels::attention(a, pool_);
    kernels::merge_attention(attn_.data(), lse_.data(), attn_local_.data(), lse_local_.data(),
                             n * hp_.n_head, hd);
  }

  // Output projection, added to the residual stream.
  const MatrixView* const gate_up_weights[] = {&w.w_gate, &w.w_up};
  kernels::matmul(w.wo, attn_.data(), n, xn_.data(), pool_, precision_, gate_up_weights);
  add_bias(xn_.data(), w.bo, n);
  kernels::add_inplace(x_.data(), xn_.data(), n * d);
}

void Transformer::ffn_block(const LayerWeights& w, int64_t layer, int64_t n) {
  const int64_t d = hp_.n_embd, ff = hp_.n_ff;
  gate_.resize(size_t(n * ff));
  up_.resize(size_t(n * ff));
  kernels::rmsnorm(x_.data(), w.ffn_norm.data(), xn_.data(), n, d, hp_.rms_norm_eps, pool_);
  const kernels::MatmulOut gate_up[] = {{&w.w_gate, gate_.data()}, {&w.w_up, up_.data()}};
  const MatrixView* const down[] = {&w.w_down};
  kernels::matmul_multi(gate_up, xn_.data(), n, pool_, precision_, down);
  kernels::swiglu(gate_.data(), up_.data(), gate_.data(), n * ff, pool_);
  // The last layer's down projection is followed by the output head.
  const MatrixView* const output[] = {&model_.output};
  kernels::matmul(w.w_down, gate_.data(), n, xn_.data(), pool_, precision_,
                  layer + 1 < hp_.n_layer ? kernels::NextWeights(qkv_weights(layer + 1))
                                          : kernels::NextWeights(output));
  kernels::add_inplace(x_.data(), xn_.data(), n * d);
}

}  // namespace ep
