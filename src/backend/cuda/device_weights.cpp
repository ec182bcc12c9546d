#include "backend/cuda/device_weights.h"

#include "core/error.h"
#include "core/half.h"
#include "core/quant.h"
#include "kernels/cpu/rope.h"

#include <cmath>

namespace ep::cuda {
namespace {

std::vector<double> inv_freq_of(const HParams& hp, const std::vector<float>& freq_factors) {
  const double linear =
      hp.rope_scaling.type == RopeScaling::Type::Linear ? hp.rope_scaling.factor : 1.0;
  return kernels::rope_inv_freq(hp.head_dim, hp.rope_theta, freq_factors, linear);
}

// Appends a matrix's rows, widened and rounded to bf16.
void append_bf16(const MatrixView& m, std::vector<bf16_t>& out) {
  std::vector<float> row(size_t(m.cols));
  const size_t base = out.size();
  out.resize(base + size_t(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    dequantize_row(m.type, m.row(r), row.data(), m.cols);
    bf16_t* dst = out.data() + base + size_t(r * m.cols);
    for (int64_t c = 0; c < m.cols; ++c) dst[c] = f32_to_bf16(row[size_t(c)]);
  }
}

template <typename T>
DeviceBuffer<T> to_device(const std::vector<T>& v) {
  DeviceBuffer<T> b{v.size()};
  if (!v.empty())
    check(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice),
          "cudaMemcpy(weights)");
  return b;
}

DeviceBuffer<bf16_t> matrices_to_device(std::initializer_list<const MatrixView*> ms) {
  std::vector<bf16_t> host;
  for (const MatrixView* m : ms) append_bf16(*m, host);
  return to_device(host);
}

DeviceBuffer<float> biases_to_device(std::initializer_list<const std::vector<float>*> bs) {
  std::vector<float> host;
  for (const auto* b : bs) host.insert(host.end(), b->begin(), b->end());
  return to_device(host);
}

DeviceBuffer<bf16_t> random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  DeviceBuffer<bf16_t> b{size_t(rows * cols)};
  // Uniform on [-a, a] has standard deviation a / sqrt(3).
  fill_random(b.get(), rows * cols, seed, 0.02f * std::sqrt(3.0f), nullptr);
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

DeviceWeights upload_weights(const Model& model) {
  DeviceWeights w;
  w.hp = model.hp;
  for (const MatrixView* m : {&model.tok_embd, &model.output}) {
    if (m->cols % 8 != 0) fail("CUDA backend: n_embd {} is not a multiple of 8", m->cols);
  }
  w.tok_embd = matrices_to_device({&model.tok_embd});
  w.output = matrices_to_device({&model.output});
  w.output_norm = to_device(model.output_norm);
  for (const LayerWeights& l : model.layers) {
    DeviceLayer d;
    d.wqkv = matrices_to_device({&l.wq, &l.wk, &l.wv});
    d.wo = matrices_to_device({&l.wo});
    d.wgu = matrices_to_device({&l.w_gate, &l.w_up});
    d.wdown = matrices_to_device({&l.w_down});
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
