// Hyper-parameters of a decoder-only transformer, whichever file format they came from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ep {

// How a head's dimensions are paired for rotary embedding.
//   RotateHalf:    pairs (i, i + head_dim/2)  - Hugging Face checkpoints, qwen2 GGUF ("neox").
//   AdjacentPairs: pairs (2i, 2i + 1)         - llama-arch GGUF, whose q/k rows the usual
//                                               converter permuted.
enum class RopeLayout { RotateHalf, AdjacentPairs };

struct RopeScaling {
  enum class Type { None, Linear, Llama3 } type = Type::None;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position = 8192;
};

// The feed-forward's gate activation: silu (SwiGLU) or GELU with the tanh approximation (Gemma).
enum class FfnActivation { Silu, GeluTanh };

struct HParams {
  // "llama", "mistral", "qwen2", "qwen3", "phi3" or "gemma3" (as the source named it)
  std::string arch;
  int64_t n_vocab = 0;
  int64_t n_embd = 0;  // hidden size
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // may differ from n_embd / n_head (explicit head_dim)
  int64_t n_ff = 0;      // feed-forward (intermediate) size
  int64_t n_ctx_train = 0;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  RopeLayout rope_layout = RopeLayout::RotateHalf;
  bool attn_qkv_bias = false;    // qwen2, or llama with attention_bias
  bool qk_norm = false;          // qwen3, gemma3: RMS norm of each query and key head before RoPE
  bool tied_embeddings = false;  // no separate output matrix
  int64_t sliding_window = 0;    // 0: full causal attention
  // Which layers use sliding_window (empty: all). Gemma 3 alternates sliding and global layers.
  std::vector<bool> sliding_layers;
  float rope_theta_sliding = 0.0f;  // RoPE base of the sliding layers when they have their own
  // Gemma 3 (the defaults are everyone else's):
  float embd_scale = 1.0f;  // token embeddings are multiplied by it (sqrt(n_embd))
  float attn_scale = 0.0f;  // attention score scale; 0: 1/sqrt(head_dim)
  bool post_norms = false;  // RMS norms of the attention and feed-forward outputs
  FfnActivation ffn_act = FfnActivation::Silu;
  float final_logit_softcap = 0.0f;  // > 0: logits = cap * tanh(logits / cap)
  int64_t bos_token = -1;
  int64_t eos_token = -1;
};

}  // namespace ep
