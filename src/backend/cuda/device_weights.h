// A model's weights on the device, in bf16: q|k|v and gate|up concatenated so that each is one
// matrix product. Norms and biases stay f32.
#pragma once

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/kernels.h"
#include "model/model.h"

#include <cstdint>
#include <vector>

namespace ep::cuda {

struct DeviceLayer {
  DeviceBuffer<bf16_t> wqkv;   // [q_dim + 2 kv_dim, n_embd]
  DeviceBuffer<bf16_t> wo;     // [n_embd, q_dim]
  DeviceBuffer<bf16_t> wgu;    // [2 n_ff, n_embd]
  DeviceBuffer<bf16_t> wdown;  // [n_embd, n_ff]
  DeviceBuffer<float> attn_norm, ffn_norm;
  DeviceBuffer<float> bqkv;  // empty without q/k/v biases
  DeviceBuffer<float> bo;    // empty without an output-projection bias
};

struct DeviceWeights {
  HParams hp;
  DeviceBuffer<bf16_t> tok_embd;  // [n_vocab, n_embd]
  DeviceBuffer<bf16_t> output;    // [n_vocab, n_embd]
  DeviceBuffer<float> output_norm;
  std::vector<DeviceLayer> layers;
  DeviceBuffer<double> inv_freq;  // [head_dim / 2] rotary frequencies

  int64_t matrix_bytes() const;  // layer matrices and the output head
};

// Expands every matrix to bf16 on the host and copies it over.
DeviceWeights upload_weights(const Model& model);
// Random bf16 weights drawn on the device (uniform, standard deviation 0.02), unit norms.
DeviceWeights random_weights(const HParams& hp, uint64_t seed);

}  // namespace ep::cuda
