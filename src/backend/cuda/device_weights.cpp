#include "backend/cuda/device_weights.h"

#include "core/error.h"
#include "kernels/cpu/rope.h"

#include <algorithm>
#include <cmath>

namespace ep::cuda {
namespace {

std::vector<double> inv_freq_of(const HParams& hp, const std::vector<float>& freq_factors) {
  const double linear =
      hp.rope_scaling.type == RopeScaling::Type::Linear ? hp.rope_scaling.factor : 1.0;
  return kernels::rope_inv_freq(hp.head_dim, hp.rope_theta, freq_factors, linear);
}

template <typename T>
DeviceBuffer<T> to_device(const std::vector<T>& v) {
  DeviceBuffer<T> b{v.size()};
  if (!v.empty())
    check(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice),
          "cudaMemcpy(weights)");
  return b;
}

DeviceBuffer<float> biases_to_device(std::initializer_list<const std::vector<float>*> bs) {
  std::vector<float> host;
  for (const auto* b : bs) host.insert(host.end(), b->begin(), b->end());
  return to_device(host);
}

DeviceMatrix random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  DeviceMatrix b = bf16_matrix(rows, cols);
  // Uniform on [-a, a] has standard deviation a / sqrt(3).
  fill_random(b.bf16(), rows * cols, seed, 0.02f * std::sqrt(3.0f), nullptr);
  return b;
}

DeviceBuffer<float> constant(int64_t n, float value) {
  DeviceBuffer<float> b{size_t(n)};
  fill_value(b.get(), n, value, nullptr);
  return b;
}

}  // namespace

int64_t DeviceWeights::matrix_bytes() const {
  int64_t b = int64_t(output.bytes());
  for (const auto& l : layers)
    b += int64_t(l.wqkv.bytes() + l.wo.bytes() + l.wgu.bytes() + l.wdown.bytes());
  return b;
}

int64_t DeviceWeights::scratch_elems() const {
  int64_t e = output.scratch_elems();
  for (const auto& l : layers) {
    for (const DeviceMatrix* m : {&l.wqkv, &l.wo, &l.wgu, &l.wdown})
      e = std::max(e, m->scratch_elems());
  }
  return e;
}

DeviceWeights upload_weights(const Model& model, bool native) {
  DeviceWeights w;
  w.hp = model.hp;
  for (const MatrixView* m : {&model.tok_embd, &model.output}) {
    if (m->cols % 8 != 0) fail("CUDA backend: n_embd {} is not a multiple of 8", m->cols);
  }
  w.tok_embd = upload_matrix({&model.tok_embd}, native);
  w.output = upload_matrix({&model.output}, native);
  w.output_norm = to_device(model.output_norm);
  for (const LayerWeights& l : model.layers) {
    DeviceLayer d;
    d.wqkv = upload_matrix({&l.wq, &l.wk, &l.wv}, native);
    d.wo = upload_matrix({&l.wo}, native);
    d.wgu = upload_matrix({&l.w_gate, &l.w_up}, native);
    d.wdown = upload_matrix({&l.w_down}, native);
    d.attn_norm = to_device(l.attn_norm);
    d.ffn_norm = to_device(l.ffn_norm);
    if (!l.bq.empty()) d.bqkv = biases_to_device({&l.bq, &l.bk, &l.bv});
    if (!l.bo.empty()) d.bo = to_device(l.bo);
    w.layers.push_back(std::move(d));
  }
  w.inv_freq = to_device(inv_freq_of(model.hp, model.rope_freq_factors));
  return w;
}

DeviceWeights random_weights(const HParams& hp, uint64_t seed) {
  DeviceWeights w;
  w.hp = hp;
  const int64_t d = hp.n_embd, q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
  uint64_t s = seed * 1000;
  w.tok_embd = random_matrix(hp.n_vocab, d, s++);
  w.output = random_matrix(hp.n_vocab, d, s++);
  w.output_norm = constant(d, 1.0f);
  for (int64_t i = 0; i < hp.n_layer; ++i) {
    DeviceLayer l;
    l.wqkv = random_matrix(q_dim + 2 * kv_dim, d, s++);
    l.wo = random_matrix(d, q_dim, s++);
    l.wgu = random_matrix(2 * hp.n_ff, d, s++);
    l.wdown = random_matrix(d, hp.n_ff, s++);
    l.attn_norm = constant(d, 1.0f);
    l.ffn_norm = constant(d, 1.0f);
    if (hp.attn_qkv_bias) l.bqkv = constant(q_dim + 2 * kv_dim, 0.01f);
    w.layers.push_back(std::move(l));
  }
  w.inv_freq = to_device(inv_freq_of(hp, {}));
  check(cudaDeviceSynchronize(), "random weights");
  return w;
}

}  // namespace ep::cuda
