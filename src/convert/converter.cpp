#include "convert/converter.h"

#include "core/error.h"
#include "core/quant.h"
#include "model/gguf.h"
#include "model/gguf_metadata.h"
#include "model/rope_scaling.h"
#include "model/weight_source.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/vocab.h"

#include <cstring>
#include <vector>

namespace ep {
namespace {

// Reorders the rows of each head from rotate-half pairing (i, i + d/2) to adjacent pairing
// (2i, 2i + 1): new row 2i = old row i, new row 2i+1 = old row i + d/2.
std::vector<float> permute_for_adjacent_rope(const std::vector<float>& w, int64_t n_heads,
                                             int64_t head_dim, int64_t cols) {
  std::vector<float> out(w.size());
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t src = h * head_dim + i + j * half;
        const int64_t dst = h * head_dim + 2 * i + j;
        std::memcpy(&out[size_t(dst * cols)], &w[size_t(src * cols)], size_t(cols) * sizeof(float));
      }
    }
  }
  return out;
}

std::vector<float> to_f32(const TensorRef& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  dequantize_row(t.type, t.data, v.data(), n);
  return v;
}

std::string model_name(const std::filesystem::path& dir) {
  auto p = dir;
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// Carries the directory's tokenizer and chat template into GGUF metadata, so that the converted
// file tokenizes text exactly as the directory does. The vocabulary is padded with unused
// "[PADn]" tokens up to the model's embedding rows (as llama.cpp's converter does); a tokenizer
// larger than the embedding is an error.
void write_tokenizer(GgufWriter& w, const std::filesystem::path& hf_dir, const HParams& hp) {
  if (hf_dir_has_tokenizer(hf_dir)) {
    Vocab v = Vocab::from_hf_dir(hf_dir);
    if (v.size() > hp.n_vocab) {
      fail("{}: the tokenizer has {} tokens but the model only {} embedding rows", hf_dir.string(),
           v.size(), hp.n_vocab);
    }
    while (v.size() < hp.n_vocab) {
      v.tokens.push_back(fmt::format("[PAD{}]", v.size()));
      v.types.push_back(TokenType::unused);
      if (!v.scores.empty()) v.scores.push_back(0.0f);
    }
    v.write_to_gguf(w);
  } else {
    // No vocabulary, but config.json's BOS/EOS ids still describe the model (generation stops
    // at EOS; token ids given to it start with BOS); GGUF keeps them in the same keys.
    if (hp.bos_token >= 0)
      w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(uint32_t(hp.bos_token)));
    if (hp.eos_token >= 0)
      w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(hp.eos_token)));
  }
  if (const std::string chat = hf_chat_template(hf_dir); !chat.empty()) {
    w.set("tokenizer.chat_template", GgufValue::string(chat));
  }
}

// GGUF gemma3 files carry no layer pattern, sliding RoPE base, score scale or logit cap: readers
// (llama.cpp, and gguf_source.cpp here) take llama.cpp's fixed choices. A model that differs
// cannot be written faithfully.
void check_gemma3_expressible(const HParams& hp, const std::string& where) {
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    if (hp.sliding_layers[size_t(l)] != ((l + 1) % 6 != 0)) {
      fail("{}: gemma3 layer {} is {}, but GGUF gemma3 files make every sixth layer global", where,
           l, hp.sliding_layers[size_t(l)] ? "sliding" : "global");
    }
  }
  if (hp.rope_theta_sliding != 10000.0f) {
    fail("{}: the sliding layers' RoPE base is {}, but GGUF gemma3 files fix it at 10000", where,
         hp.rope_theta_sliding);
  }
  if (hp.attn_scale != gemma3_gguf_attn_scale(hp)) {
    fail("{}: query_pre_attn_scalar gives a score scale GGUF gemma3 files cannot express", where);
  }
  if (hp.final_logit_softcap > 0) {
    fail("{}: GGUF gemma3 files have no final logit soft-capping", where);
  }
}

}  // namespace

ConvertReport convert_hf_to_gguf(const std::filesystem::path& hf_dir,
                                 const std::filesystem::path& out, DType type,
                                 const std::function<void(uint64_t, uint64_t)>& progress) {
  // The types this converter quantises to; others (the K-quants) are read, not written.
  if (type != DType::F32 && type != DType::F16 && type != DType::BF16 && type != DType::Q8_0 &&
      type != DType::Q4_0) {
    fail(
        "convert writes f32, f16, bf16, q8_0 or q4_0, not {} (llama-quantize makes K-quant files "
        "from an f16 or f32 GGUF)",
        dtype_name(type));
  }
  const auto src = open_hf_source(hf_dir);
  const HParams& hp = src->hparams();
  if (hp.arch == "gemma3") check_gemma3_expressible(hp, hf_dir.string());
  // Gemma's norms scale by (1 + w); GGUF stores the factor (llama.cpp's converter adds the 1).
  const float norm_shift = hp.arch == "gemma3" ? 1.0f : 0.0f;
  const bool adjacent = gguf_arch_name(hp) == "llama";

  GgufWriter w;
  write_hparams_metadata(w, hp, type, model_name(hf_dir));
  write_tokenizer(w, hf_dir, hp);
  ConvertReport report;

  // Canonical tensor order: embeddings, layers, output.
  // Phi-3 keeps its fused q/k/v and gate/up matrices, as GGUF's phi3 files do.
  const bool fused = hp.arch == "phi3";
  std::vector<std::string> per_layer = {"attn_norm.weight"};
  if (fused) {
    per_layer.insert(per_layer.end(), {"attn_qkv.weight"});
  } else {
    per_layer.insert(per_layer.end(), {"attn_q.weight", "attn_q.bias", "attn_k.weight",
                                       "attn_k.bias", "attn_v.weight", "attn_v.bias"});
  }
  if (hp.qk_norm) per_layer.insert(per_layer.end(), {"attn_q_norm.weight", "attn_k_norm.weight"});
  if (hp.post_norms) {
    per_layer.insert(per_layer.end(), {"post_attention_norm.weight", "post_ffw_norm.weight"});
  }
  per_layer.insert(per_layer.end(), {"attn_output.weight", "attn_output.bias", "ffn_norm.weight"});
  if (!fused) per_layer.push_back("ffn_gate.weight");
  per_layer.insert(per_layer.end(), {"ffn_up.weight", "ffn_down.weight"});
  std::vector<std::string> names{"token_embd.weight"};
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    for (const auto& s : per_layer) names.push_back(fmt::format("blk.{}.{}", l, s));
  }
  names.push_back("output_norm.weight");
  names.push_back("output.weight");

  for (const auto& name : names) {
    const auto t = src->find(name);
    if (!t) {
      if (name.find(".bias") != std::string::npos || name == "output.weight") continue;
      fail("{}: missing tensor '{}'", hf_dir.string(), name);
    }
    if (t->shape.empty() || t->shape.size() > 2) {
      fail("{}: tensor '{}' has {} dimensions", hf_dir.string(), t->source_name, t->shape.size());
    }
    const bool matrix = t->shape.size() == 2;
    const int64_t cols = t->shape.back();
    const int64_t rows = matrix ? t->shape[0] : 1;
    DType out_type = matrix ? type : DType::F32;
    // As llama.cpp's Q4_0 files do, the embedding and output matrices keep more precision: they
    // dominate the error of 4-bit models (measured in docs/fidelity.md).
    if (type == DType::Q4_0 && (name == "token_embd.weight" || name == "output.weight")) {
      out_type = DType::Q8_0;
    }
    if (cols % dtype_block_elems(out_type) != 0) {
      out_type = DType::F16;
      ++report.n_fallback_f16;
    }
    // Which heads to permute, if any.
    int64_t permute_heads = 0;
    if (adjacent && (name.find("attn_q.") != std::string::npos)) permute_heads = hp.n_head;
    if (adjacent && (name.find("attn_k.") != std::string::npos)) permute_heads = hp.n_head_kv;

    const TensorRef ref = *t;
    const float shift = !matrix && name.ends_with("norm.weight") ? norm_shift : 0.0f;
    w.add_tensor(name, out_type,
                 matrix ? std::vector<int64_t>{cols, rows} : std::vector<int64_t>{cols},
                 [ref, out_type, rows, cols, permute_heads, shift, &hp](std::span<uint8_t> dst) {
                   std::vector<float> v = to_f32(ref);
                   for (float& x : v) x += shift;
                   if (permute_heads > 0) {
                     // A bias is a column of one element per row.
                     const int64_t width = ref.shape.size() == 2 ? cols : 1;
                     v = permute_for_adjacent_rope(v, permute_heads, hp.head_dim, width);
                   }
                   const int64_t row_bytes = dtype_row_bytes(out_type, cols);
                   for (int64_t r = 0; r < rows; ++r) {
                     quantize_row(out_type, &v[size_t(r * cols)], dst.data() + r * row_bytes, cols);
                   }
                 });
    ++report.n_tensors;
  }

  if (hp.rope_scaling.type == RopeScaling::Type::Llama3) {
    const std::vector<float> factors = llama3_freq_factors(hp);
    w.add_tensor(
        "rope_freqs.weight", DType::F32, {int64_t(factors.size())},
        [factors](std::span<uint8_t> dst) { std::memcpy(dst.data(), factors.data(), dst.size()); });
    ++report.n_tensors;
  }

  w.write(out, [&](uint64_t done, uint64_t total) {
    report.bytes = total;
    if (progress) progress(done, total);
  });
  return report;
}

}  // namespace ep
