#include "model/gguf_metadata.h"

#include <cmath>

namespace ep {
namespace {

// llama.cpp's llama_ftype values for "mostly <type>" files.
uint32_t file_type_id(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q8_0:
      return 7;
    case DType::BF16:
      return 32;
    case DType::Q4_1:
      return 3;
    case DType::Q5_0:
      return 8;
    case DType::Q5_1:
      return 9;
    case DType::Q2_K:
      return 10;
    case DType::Q3_K:
      return 12;  // Q3_K_M
    case DType::Q4_K:
      return 15;  // Q4_K_M
    case DType::Q5_K:
      return 17;  // Q5_K_M
    case DType::Q6_K:
      return 18;
  }
  return 0;
}

}  // namespace

float gemma3_gguf_attn_scale(const HParams& hp) {
  // llama.cpp: 1/sqrt(head_dim), except for the 27B model (62 layers), 1/sqrt(hidden / heads).
  const int64_t d = hp.n_layer == 62 ? hp.n_embd / hp.n_head : hp.head_dim;
  return float(1.0 / std::sqrt(double(d)));
}

std::string gguf_arch_name(const HParams& hp) {
  // Mistral is written as llama (adjacent-pair rows); the others keep their names and rotate-half.
  if (hp.arch == "qwen2" || hp.arch == "qwen3" || hp.arch == "phi3" || hp.arch == "gemma3") {
    return hp.arch;
  }
  return "llama";
}

void write_hparams_metadata(GgufWriter& w, const HParams& hp, DType weights_type,
                            const std::string& model_name) {
  const std::string a = gguf_arch_name(hp);
  w.set("general.architecture", GgufValue::string(a));
  w.set("general.name", GgufValue::string(model_name));
  w.set("general.file_type", GgufValue::u32(file_type_id(weights_type)));
  w.set("general.alignment", GgufValue::u32(32));
  w.set(a + ".vocab_size", GgufValue::u32(uint32_t(hp.n_vocab)));
  w.set(a + ".context_length", GgufValue::u32(uint32_t(hp.n_ctx_train)));
  w.set(a + ".embedding_length", GgufValue::u32(uint32_t(hp.n_embd)));
  w.set(a + ".block_count", GgufValue::u32(uint32_t(hp.n_layer)));
  w.set(a + ".feed_forward_length", GgufValue::u32(uint32_t(hp.n_ff)));
  w.set(a + ".attention.head_count", GgufValue::u32(uint32_t(hp.n_head)));
  w.set(a + ".attention.head_count_kv", GgufValue::u32(uint32_t(hp.n_head_kv)));
  w.set(a + ".attention.key_length", GgufValue::u32(uint32_t(hp.head_dim)));
  w.set(a + ".attention.value_length", GgufValue::u32(uint32_t(hp.head_dim)));
  w.set(a + ".attention.layer_norm_rms_epsilon", GgufValue::f32(hp.rms_norm_eps));
  w.set(a + ".rope.dimension_count", GgufValue::u32(uint32_t(hp.head_dim)));
  w.set(a + ".rope.freq_base", GgufValue::f32(hp.rope_theta));
  if (hp.rope_scaling.type == RopeScaling::Type::Linear) {
    w.set(a + ".rope.scaling.type", GgufValue::string("linear"));
    w.set(a + ".rope.scaling.factor", GgufValue::f32(hp.rope_scaling.factor));
  }
  if (hp.sliding_window > 0) {
    w.set(a + ".attention.sliding_window", GgufValue::u32(uint32_t(hp.sliding_window)));
  }
}

}  // namespace ep
