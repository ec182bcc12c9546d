// A loaded model: hyper-parameters plus views of its weights (memory-mapped, never copied,
// except small 1-D tensors such as norms and biases, which are widened to f32).
#pragma once

#include "core/matrix_view.h"
#include "model/hparams.h"
#include "model/weight_source.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ep {

struct LayerWeights {
  std::vector<float> attn_norm;
  MatrixView wq, wk, wv, wo;
  std::vector<float> bq, bk, bv;      // empty unless the architecture has q/k/v biases
  std::vector<float> bo;              // output-projection bias (Llama with attention_bias)
  std::vector<float> q_norm, k_norm;  // head_dim weights, with HParams::qk_norm
  std::vector<float> post_attn_norm, post_ffn_norm;  // with HParams::post_norms
  std::vector<float> ffn_norm;
  MatrixView w_gate, w_up, w_down;
  // Phi-3 stores q/k/v as one matrix (attn_qkv) and gate/up as one (ffn_up, gate rows first):
  // wq, wk, wv, w_gate and w_up are then views of row ranges of those.
};

struct Model {
  HParams hp;
  std::filesystem::path path;
  std::unique_ptr<WeightSource> source;  // owns the mapped files the views point into
  MatrixView tok_embd;
  std::vector<LayerWeights> layers;
  std::vector<float> output_norm;
  MatrixView output;                     // == tok_embd when embeddings are tied
  std::vector<float> rope_freq_factors;  // empty, or head_dim/2 divisors of the frequencies

  int64_t n_params() const;
  int64_t weight_bytes() const;
};

// Loads a GGUF file or a Hugging Face directory (config.json + *.safetensors).
// Throws ep::Error naming the path and the problem.
std::unique_ptr<Model> load_model(const std::filesystem::path& path);

}  // namespace ep
