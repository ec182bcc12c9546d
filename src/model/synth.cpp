#include "model/synth.h"

#include "core/error.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "model/gguf.h"
#include "model/gguf_metadata.h"

#include <cmath>

namespace ep {
namespace {

HParams shape(std::string arch, int64_t vocab, int64_t embd, int64_t layers, int64_t heads,
              int64_t kv_heads, int64_t ff, int64_t ctx, float theta, float eps) {
  HParams hp;
  hp.arch = std::move(arch);
  hp.n_vocab = vocab;
  hp.n_embd = embd;
  hp.n_layer = layers;
  hp.n_head = heads;
  hp.n_head_kv = kv_heads;
  hp.head_dim = embd / heads;
  hp.n_ff = ff;
  hp.n_ctx_train = ctx;
  hp.rope_theta = theta;
  hp.rms_norm_eps = eps;
  hp.rope_layout = hp.arch == "qwen2" ? RopeLayout::RotateHalf : RopeLayout::AdjacentPairs;
  hp.attn_qkv_bias = hp.arch == "qwen2";
  hp.tied_embeddings = hp.arch == "qwen2";
  hp.bos_token = 1;
  hp.eos_token = 2;
  return hp;
}

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Approximately normal noise: the sum of four uniforms, scaled to standard deviation `sd`.
void fill_noise(float* out, int64_t n, uint64_t seed, float mean, float sd) {
  const float scale = sd * std::sqrt(3.0f);  // sum of 4 U(-.5,.5) has variance 1/3
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = splitmix64(seed);
    float s = 0.0f;
    for (int k = 0; k < 4; ++k) s += float((r >> (16 * k)) & 0xffff) * (1.0f / 65536.0f) - 0.5f;
    out[i] = mean + s * scale;
  }
}

// A placeholder SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then unique
// pieces. It is not a trained tokenizer; it makes the file complete for any GGUF reader.
void write_placeholder_vocab(GgufWriter& w, int64_t n_vocab) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  tokens.reserve(size_t(n_vocab));
  const auto add = [&](std::string t, int32_t type) {
    scores.push_back(-float(tokens.size()));
    tokens.push_back(std::move(t));
    types.push_back(type);
  };
  add("<unk>", 2);
  add("<s>", 3);
  add("</s>", 3);
  for (int b = 0; b < 256 && int64_t(tokens.size()) < n_vocab; ++b) {
    add(fmt::format("<0x{:02X}>", b), 6);
  }
  while (int64_t(tokens.size()) < n_vocab) add(fmt::format("\u2581t{}", tokens.size()), 1);
  w.set("tokenizer.ggml.model", GgufValue::string("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  w.set("tokenizer.ggml.scores", GgufValue::f32_array(scores));
  w.set("tokenizer.ggml.token_type", GgufValue::i32_array(types));
  w.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(0));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
}

}  // namespace

std::vector<std::string> synth_shape_names() {
  return {"tinyllama-1.1b", "llama2-7b", "llama3-8b", "qwen2.5-0.5b"};
}

std::optional<HParams> synth_shape(const std::string& name) {
  if (name == "tinyllama-1.1b")
    return shape("llama", 32000, 2048, 22, 32, 4, 5632, 2048, 1e4f, 1e-5f);
  if (name == "llama2-7b") return shape("llama", 32000, 4096, 32, 32, 32, 11008, 4096, 1e4f, 1e-5f);
  if (name == "llama3-8b") {
    return shape("llama", 128256, 4096, 32, 32, 8, 14336, 8192, 5e5f, 1e-5f);
  }
  if (name == "qwen2.5-0.5b") {
    return shape("qwen2", 151936, 896, 24, 14, 2, 4864, 32768, 1e6f, 1e-6f);
  }
  return std::nullopt;
}

void write_synthetic_model(const HParams& hp, DType type, const std::string& name,
                           const std::filesystem::path& out, uint64_t seed, int n_threads,
                           const std::function<void(uint64_t, uint64_t)>& progress) {
  GgufWriter w;
  write_hparams_metadata(w, hp, type, name + " (synthetic random weights)");
  write_placeholder_vocab(w, hp.n_vocab);
  ThreadPool pool(n_threads);

  uint64_t tensor_seed = seed;
  const auto add = [&](const std::string& tname, int64_t rows, int64_t cols, float mean, float sd) {
    const DType t = rows == 1 ? DType::F32 : type;
    const uint64_t s = splitmix64(tensor_seed);
    w.add_tensor(
        tname, t, rows == 1 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows},
        [=, &pool](std::span<uint8_t> dst) {
          const int64_t row_bytes = dtype_row_bytes(t, cols);
          pool.parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
            std::vector<float> row(static_cast<size_t>(cols));
            for (int64_t r = r0; r < r1; ++r) {
              fill_noise(row.data(), cols, s ^ (uint64_t(r) * 0x9e3779b97f4a7c15ull), mean, sd);
              quantize_row(t, row.data(), dst.data() + r * row_bytes, cols);
            }
          });
        });
  };
  const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
  add("token_embd.weight", hp.n_vocab, hp.n_embd, 0.0f, 0.02f);
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    add(p + "attn_norm.weight", 1, hp.n_embd, 1.0f, 0.05f);
    add(p + "attn_q.weight", q_dim, hp.n_embd, 0.0f, 0.02f);
    if (hp.attn_qkv_bias) add(p + "attn_q.bias", 1, q_dim, 0.0f, 0.02f);
    add(p + "attn_k.weight", kv_dim, hp.n_embd, 0.0f, 0.02f);
    if (hp.attn_qkv_bias) add(p + "attn_k.bias", 1, kv_dim, 0.0f, 0.02f);
    add(p + "attn_v.weight", kv_dim, hp.n_embd, 0.0f, 0.02f);
    if (hp.attn_qkv_bias) add(p + "attn_v.bias", 1, kv_dim, 0.0f, 0.02f);
    add(p + "attn_output.weight", hp.n_embd, q_dim, 0.0f, 0.02f);
    add(p + "ffn_norm.weight", 1, hp.n_embd, 1.0f, 0.05f);
    add(p + "ffn_gate.weight", hp.n_ff, hp.n_embd, 0.0f, 0.02f);
    add(p + "ffn_up.weight", hp.n_ff, hp.n_embd, 0.0f, 0.02f);
    add(p + "ffn_down.weight", hp.n_embd, hp.n_ff, 0.0f, 0.02f);
  }
  add("output_norm.weight", 1, hp.n_embd, 1.0f, 0.05f);
  if (!hp.tied_embeddings) add("output.weight", hp.n_vocab, hp.n_embd, 0.0f, 0.02f);
  w.write(out, progress);
}

}  // namespace ep
