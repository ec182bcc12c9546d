#include "runtime/batch_forward.h"

#include "core/error.h"
#include "core/quant.h"
#include "core/token_list.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/rope.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace ep {
namespace {

void add_bias(float* y, const std::vector<float>& bias, int64_t n_rows) {
  if (bias.empty()) return;
  const auto width = int64_t(bias.size());
  for (int64_t r = 0; r < n_rows; ++r) kernels::add_inplace(y + r * width, bias.data(), width);
}

int64_t n_prefix_of(const BatchChunk& c) {
  return c.prefix ? c.prefix->n_tokens() : 0;
}

}  // namespace

void check_prefix_shape(const Model& model, const KvSegment& prefix) {
  const int64_t row = model.hp.n_head_kv * model.hp.head_dim;
  if (prefix.n_layers() != model.hp.n_layer || prefix.row_size() != row) {
    fail("prefix KV has {} layers x {} values per token; the model needs {} x {}",
         prefix.n_layers(), prefix.row_size(), model.hp.n_layer, row);
  }
}

BatchForward::BatchForward(const Model& model, ThreadPool& pool)
    : model_(model), hp_(model.hp), pool_(pool) {
  if (model.layers.empty() || int64_t(model.layers.size()) != hp_.n_layer)
    fail("model has {} layers of weights for a layer count of {}", model.layers.size(),
         hp_.n_layer);
  const double linear =
      hp_.rope_scaling.type == RopeScaling::Type::Linear ? hp_.rope_scaling.factor : 1.0;
  inv_freq_ = kernels::rope_inv_freq(hp_.head_dim, hp_.rope_theta, model.rope_freq_factors, linear);
  if (hp_.rope_theta_sliding > 0) {
    inv_freq_sliding_ = kernels::rope_inv_freq(hp_.head_dim, hp_.rope_theta_sliding, {}, 1.0);
  }
}

int64_t BatchForward::window(int64_t layer) const {
  const bool sliding = hp_.sliding_layers.empty() || hp_.sliding_layers[size_t(layer)];
  return sliding ? hp_.sliding_window : 0;
}

const std::vector<double>& BatchForward::inv_freq(int64_t layer) const {
  return window(layer) > 0 && !inv_freq_sliding_.empty() ? inv_freq_sliding_ : inv_freq_;
}

void BatchForward::forward(std::span<const BatchChunk> chunks, std::vector<float>& logits,
                           bool all_logits) {
  if (chunks.empty()) fail("no tokens to process");
  if (all_logits && chunks.size() != 1) fail("all_logits needs a batch of one chunk");
  if (layer_sink_ && chunks.size() != 1) fail("a layer sink needs a batch of one chunk");
  first_row_.resize(chunks.size());
  n_tokens_ = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    const BatchChunk& ch = chunks[c];
    const auto n = int64_t(ch.tokens.size());
    if (n == 0) fail("no tokens to process");
    if (ch.n_past + n > ch.kv->capacity()) {
      fail("context full: {} tokens already, {} more would exceed the context of {}", ch.n_past, n,
           ch.kv->capacity());
    }
    if (ch.prefix) check_prefix_shape(model_, *ch.prefix);
    check_token_ids(ch.tokens, hp_.n_vocab);
    first_row_[c] = n_tokens_;
    n_tokens_ += n;
  }

  const int64_t d = hp_.n_embd, T = n_tokens_;
  x_.resize(size_t(T * d));
  xn_.resize(size_t(T * d));
  positions_.resize(size_t(T));
  for (size_t c = 0; c < chunks.size(); ++c) {
    const BatchChunk& ch = chunks[c];
    for (size_t i = 0; i < ch.tokens.size(); ++i) {
      const int64_t r = first_row_[c] + int64_t(i);
      float* row = &x_[size_t(r * d)];
      dequantize_row(model_.tok_embd.type, model_.tok_embd.row(ch.tokens[i]), row, d);
      if (hp_.embd_scale != 1.0f) {
        for (int64_t j = 0; j < d; ++j) row[j] *= hp_.embd_scale;
      }
      positions_[size_t(r)] = n_prefix_of(ch) + ch.n_past + int64_t(i);
    }
  }

  // The layer loop: x += attention(norm(x)); x += ffn(norm(x)).
  timings_.assign(size_t(hp_.n_layer), {});
  for (int64_t l = 0; l < hp_.n_layer; ++l) {
    const auto start = std::chrono::steady_clock::now();
    const LayerWeights& w = model_.layers[size_t(l)];
    attention_block(chunks, w, l);
    ffn_block(w, l);
    timings_[size_t(l)].compute_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() -
        timings_[size_t(l)].wait_s;
  }

  // Output head: for every token (all_logits), or for each chunk's last token that asks.
  int64_t rows = 0;
  if (all_logits) {
    kernels::rmsnorm(x_.data(), model_.output_norm.data(), xn_.data(), T, d, hp_.rms_norm_eps);
    rows = T;
  } else {
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (!chunks[c].logits) continue;
      const int64_t last = first_row_[c] + int64_t(chunks[c].tokens.size()) - 1;
      kernels::rmsnorm(&x_[size_t(last * d)], model_.output_norm.data(), &xn_[size_t(rows * d)], 1,
                       d, hp_.rms_norm_eps);
      ++rows;
    }
  }
  logits.resize(size_t(rows * hp_.n_vocab));
  if (rows > 0) {
    kernels::matmul(model_.output, xn_.data(), rows, logits.data(), pool_, precision_,
                    qkv_weights(0));
  }
  if (const float cap = hp_.final_logit_softcap; cap > 0) {
    for (float& v : logits) v = float(cap * std::tanh(double(v) / cap));
  }
}

std::array<const MatrixView*, 3> BatchForward::qkv_weights(int64_t layer) const {
  const LayerWeights& w = model_.layers[size_t(layer)];
  return {&w.wq, &w.wk, &w.wv};
}

void BatchForward::attention_block(std::span<const BatchChunk> chunks, const LayerWeights& w,
                                   int64_t layer) {
  const int64_t d = hp_.n_embd, hd = hp_.head_dim, T = n_tokens_;
  const int64_t q_dim = hp_.n_head * hd, kv_dim = hp_.n_head_kv * hd;
  q_.resize(size_t(T * q_dim));
  k_.resize(size_t(T * kv_dim));
  v_.resize(size_t(T * kv_dim));
  attn_.resize(size_t(T * q_dim));
  lse_.resize(size_t(T * hp_.n_head));

  kernels::rmsnorm(x_.data(), w.attn_norm.data(), xn_.data(), T, d, hp_.rms_norm_eps, pool_);
  const kernels::MatmulOut qkv[] = {{&w.wq, q_.data()}, {&w.wk, k_.data()}, {&w.wv, v_.data()}};
  const MatrixView* const wo[] = {&w.wo};
  kernels::matmul_multi(qkv, xn_.data(), T, pool_, precision_, wo);
  add_bias(q_.data(), w.bq, T);
  add_bias(k_.data(), w.bk, T);
  add_bias(v_.data(), w.bv, T);
  if (hp_.qk_norm) {  // each head's query and key normalised on its own, before the rotation
    kernels::rmsnorm(q_.data(), w.q_norm.data(), q_.data(), T * hp_.n_head, hd, hp_.rms_norm_eps);
    kernels::rmsnorm(k_.data(), w.k_norm.data(), k_.data(), T * hp_.n_head_kv, hd,
                     hp_.rms_norm_eps);
  }
  const auto pairs = hp_.rope_layout == RopeLayout::RotateHalf ? kernels::RotaryPairs::Halves
                                                               : kernels::RotaryPairs::Adjacent;
  kernels::rope(q_.data(), T, hp_.n_head, hd, positions_.data(), inv_freq(layer), pairs);
  kernels::rope(k_.data(), T, hp_.n_head_kv, hd, positions_.data(), inv_freq(layer), pairs);
  const float scale = hp_.attn_scale > 0 ? hp_.attn_scale : float(1.0 / std::sqrt(double(hd)));

  // Each chunk's keys and values join its sequence's KV; then attention over the sequence's own
  // keys (causal).
  for (size_t c = 0; c < chunks.size(); ++c) {
    const BatchChunk& ch = chunks[c];
    const auto n = int64_t(ch.tokens.size());
    const int64_t r = first_row_[c];
    ch.kv->write(layer, ch.n_past, n, &k_[size_t(r * kv_dim)], &v_[size_t(r * kv_dim)]);
    if (layer_sink_) layer_sink_(layer, &k_[size_t(r * kv_dim)], &v_[size_t(r * kv_dim)], n);
    const auto [k, v] = ch.kv->view(layer, ch.n_past + n);
    kernels::AttentionArgs a;
    a.q = &q_[size_t(r * q_dim)];
    a.n_q = n;
    a.q_pos0 = n_prefix_of(ch) + ch.n_past;
    a.k = k;
    a.v = v;
    a.n_kv = ch.n_past + n;
    a.k_pos0 = n_prefix_of(ch);
    a.n_head = hp_.n_head;
    a.n_head_kv = hp_.n_head_kv;
    a.head_dim = hd;
    a.scale = scale;
    a.window = window(layer);
    a.out = &attn_[size_t(r * q_dim)];
    a.lse = &lse_[size_t(r * hp_.n_head)];
    kernels::attention(a, pool_);
  }
  prefix_attention(chunks, layer);

  // Output projection, added to the residual stream.
  const MatrixView* const gate_up_weights[] = {&w.w_gate, &w.w_up};
  kernels::matmul(w.wo, attn_.data(), T, xn_.data(), pool_, precision_, gate_up_weights);
  add_bias(xn_.data(), w.bo, T);
  if (hp_.post_norms) {
    kernels::rmsnorm(xn_.data(), w.post_attn_norm.data(), xn_.data(), T, d, hp_.rms_norm_eps,
                     pool_);
  }
  kernels::add_inplace(x_.data(), xn_.data(), T * d);
}

// Attention over the shared prefixes (all earlier than the chunks' own keys), one pass per
// prefix for every chunk that shares it, merged into each chunk's own result.
void BatchForward::prefix_attention(std::span<const BatchChunk> chunks, int64_t layer) {
  const int64_t hd = hp_.head_dim, q_dim = hp_.n_head * hd;
  std::vector<bool> done(chunks.size(), false);
  for (size_t c = 0; c < chunks.size(); ++c) {
    if (!chunks[c].prefix || done[c]) continue;
    const KvSegment* prefix = chunks[c].prefix;
    // The group: chunks with this prefix. With a sliding window a query's visible prefix keys
    // depend on its position, so each chunk is then a group of its own.
    std::vector<size_t> group;
    for (size_t o = c; o < chunks.size(); ++o) {
      if (chunks[o].prefix == prefix && !done[o] && (o == c || window(layer) == 0)) {
        group.push_back(o);
        done[o] = true;
      }
    }
    timings_[size_t(layer)].wait_s +=
        std::chrono::duration<double>(prefix->wait_layer(layer)).count();
    int64_t n_q = 0;
    for (size_t g : group) n_q += int64_t(chunks[g].tokens.size());
    q_group_.resize(size_t(n_q * q_dim));
    attn_group_.resize(size_t(n_q * q_dim));
    lse_group_.resize(size_t(n_q * hp_.n_head));
    int64_t at = 0;
    for (size_t g : group) {
      const int64_t n = int64_t(chunks[g].tokens.size()), r = first_row_[g];
      std::copy_n(&q_[size_t(r * q_dim)], n * q_dim, &q_group_[size_t(at * q_dim)]);
      at += n;
    }
    kernels::AttentionArgs a;
    a.q = q_group_.data();
    a.n_q = n_q;
    // Every prefix key precedes every query, so without a sliding window the queries' positions
    // change nothing (one position for all keeps a query's result the same in any group); with
    // one, the group is a single chunk at its true positions.
    a.q_pos0 = prefix->n_tokens() + (window(layer) > 0 ? chunks[c].n_past : 0);
    a.k = prefix->k(layer);
    a.v = prefix->v(layer);
    a.n_kv = prefix->n_tokens();
    a.k_pos0 = 0;
    a.n_head = hp_.n_head;
    a.n_head_kv = hp_.n_head_kv;
    a.head_dim = hd;
    a.scale = hp_.attn_scale > 0 ? hp_.attn_scale : float(1.0 / std::sqrt(double(hd)));
    a.window = window(layer);
    a.out = attn_group_.data();
    a.lse = lse_group_.data();
    kernels::attention(a, pool_);
    at = 0;
    for (size_t g : group) {
      const int64_t n = int64_t(chunks[g].tokens.size()), r = first_row_[g];
      float* out = &attn_group_[size_t(at * q_dim)];
      float* lse = &lse_group_[size_t(at * hp_.n_head)];
      kernels::merge_attention(out, lse, &attn_[size_t(r * q_dim)], &lse_[size_t(r * hp_.n_head)],
                               n * hp_.n_head, hd);
      std::copy_n(out, n * q_dim, &attn_[size_t(r * q_dim)]);
      std::copy_n(lse, n * hp_.n_head, &lse_[size_t(r * hp_.n_head)]);
      at += n;
    }
  }
}

void BatchForward::ffn_block(const LayerWeights& w, int64_t layer) {
  const int64_t d = hp_.n_embd, ff = hp_.n_ff, T = n_tokens_;
  gate_.resize(size_t(T * ff));
  up_.resize(size_t(T * ff));
  kernels::rmsnorm(x_.data(), w.ffn_norm.data(), xn_.data(), T, d, hp_.rms_norm_eps, pool_);
  const kernels::MatmulOut gate_up[] = {{&w.w_gate, gate_.data()}, {&w.w_up, up_.data()}};
  const MatrixView* const down[] = {&w.w_down};
  kernels::matmul_multi(gate_up, xn_.data(), T, pool_, precision_, down);
  if (hp_.ffn_act == FfnActivation::GeluTanh) {
    kernels::geglu_tanh(gate_.data(), up_.data(), gate_.data(), T * ff);
  } else {
    kernels::swiglu(gate_.data(), up_.data(), gate_.data(), T * ff, pool_);
  }
  // The last layer's down projection is followed by the output head.
  const MatrixView* const output[] = {&model_.output};
  kernels::matmul(w.w_down, gate_.data(), T, xn_.data(), pool_, precision_,
                  layer + 1 < hp_.n_layer ? kernels::NextWeights(qkv_weights(layer + 1))
                                          : kernels::NextWeights(output));
  if (hp_.post_norms) {
    kernels::rmsnorm(xn_.data(), w.post_ffn_norm.data(), xn_.data(), T, d, hp_.rms_norm_eps, pool_);
  }
  kernels::add_inplace(x_.data(), xn_.data(), T * d);
}

}  // namespace ep
