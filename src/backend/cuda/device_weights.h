// A model's weights on the device, in the file's block types or in bf16 (device_matrix.h): q|k|v
// and gate|up concatenated so that each is one matrix product. Norms and biases stay f32.
#pragma once

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/device_matrix.h"
#include "backend/cuda/kernels.h"
#include "model/model.h"

#include <cstdint>
#include <vector>

namespace ep::cuda {

struct DeviceLayer {
  DeviceMatrix wqkv;   // [q_dim + 2 kv_dim, n_embd]
  DeviceMatrix wo;     // [n_embd, q_dim]
  DeviceMatrix wgu;    // [2 n_ff, n_embd]: segment 0 the gate rows, segment 1 the up rows
  DeviceMatrix wdown;  // [n_embd, n_ff]
  DeviceBuffer<float> attn_norm, ffn_norm;
  DeviceBuffer<float> bqkv;  // empty without q/k/v biases
  DeviceBuffer<float> bo;    // empty without an output-projection bias
};

struct DeviceWeights {
  HParams hp;
  DeviceMatrix tok_embd;  // [n_vocab, n_embd]
  DeviceMatrix output;    // [n_vocab, n_embd]
  DeviceBuffer<float> output_norm;
  std::vector<DeviceLayer> layers;
  DeviceBuffer<double> inv_freq;  // [head_dim / 2] rotary frequencies

  int64_t matrix_bytes() const;   // layer matrices and the output head, as stored
  int64_t scratch_elems() const;  // the bf16 scratch the batched products of native matrices need
};

// Copies the matrices over: quantised ones as their blocks with `native`, else expanded to bf16
// on the host (F32, F16 and BF16 files always are).
DeviceWeights upload_weights(const Model& model, bool native = true);
// Random bf16 weights drawn on the device (uniform, standard deviation 0.02), unit norms.
DeviceWeights random_weights(const HParams& hp, uint64_t seed);

}  // namespace ep::cuda
