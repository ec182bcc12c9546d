// Weights and hyper-parameters from a GGUF file.
#include "core/error.h"
#include "model/gguf.h"
#include "model/gguf_metadata.h"
#include "model/weight_source.h"

#include <xxhash.h>

#include <cmath>

namespace ep {
namespace {

// GGUF stores ne[0] (innermost) first; TensorRef wants row-major, outermost first.
TensorRef to_ref(const GgufTensorInfo& t) {
  TensorRef r;
  r.name = t.name;
  r.source_name = t.name;
  r.type = t.type;
  r.shape.assign(t.shape.rbegin(), t.shape.rend());
  r.data = t.data;
  r.n_bytes = t.n_bytes;
  return r;
}

HParams read_hparams(const GgufFile& f) {
  HParams hp;
  hp.arch = f.get_string("general.architecture");
  if (hp.arch != "llama" && hp.arch != "qwen2" && hp.arch != "mistral" && hp.arch != "qwen3" &&
      hp.arch != "phi3" && hp.arch != "gemma3") {
    fail("{}: unknown architecture '{}' (supported: llama, mistral, qwen2, qwen3, phi3, gemma3)",
         f.name(), hp.arch);
  }
  if (f.find_tensor("rope_factors_long.weight") || f.find_tensor("rope_factors_short.weight")) {
    fail("{}: LongRoPE (rope_factors_long/short.weight) is not supported", f.name());
  }
  const std::string& a = hp.arch;
  const auto key = [&](const char* k) { return a + "." + k; };
  const auto u64 = [&](const std::string& k) -> int64_t {
    try {
      return int64_t(f.get(k).as_u64());
    } catch (const Error& e) {
      if (f.find(k) == nullptr) throw;
      fail("{}: metadata '{}': {}", f.name(), k, e.what());
    }
  };
  const auto u64_or = [&](const std::string& k, int64_t fallback) {
    return f.find(k) ? u64(k) : fallback;
  };
  hp.n_embd = u64(key("embedding_length"));
  hp.n_layer = u64(key("block_count"));
  hp.n_ff = u64(key("feed_forward_length"));
  hp.n_head = u64(key("attention.head_count"));
  hp.n_head_kv = u64_or(key("attention.head_count_kv"), hp.n_head);
  hp.n_ctx_train = u64_or(key("context_length"), 4096);
  hp.head_dim = u64_or(key("attention.key_length"), hp.n_head > 0 ? hp.n_embd / hp.n_head : 0);
  hp.rms_norm_eps = float(f.get_f64(key("attention.layer_norm_rms_epsilon")));
  hp.rope_theta = f.find(key("rope.freq_base")) ? float(f.get_f64(key("rope.freq_base"))) : 10000.f;
  if (const GgufValue* t = f.find(key("rope.scaling.type"))) {
    const std::string& type = t->as_string();
    if (type == "linear") {
      hp.rope_scaling.type = RopeScaling::Type::Linear;
      hp.rope_scaling.factor = float(f.get_f64(key("rope.scaling.factor")));
    } else if (type != "none") {
      fail(
          "{}: unsupported rope scaling type '{}' (supported: none, linear, llama3 via "
          "rope_freqs.weight)",
          f.name(), type);
    }
  }
  if (const int64_t rope_dims = u64_or(key("rope.dimension_count"), hp.head_dim);
      rope_dims != hp.head_dim) {
    fail("{}: partial rotary embedding ({} of {} dims) is not supported", f.name(), rope_dims,
         hp.head_dim);
  }
  hp.sliding_window = u64_or(key("attention.sliding_window"), 0);
  // llama-arch files were written with q/k rows permuted for adjacent-pair rotation.
  // (qwen2, qwen3 and phi3 rotate halves, as llama.cpp's "neox" rotation).
  hp.rope_layout = hp.arch == "llama" || hp.arch == "mistral" ? RopeLayout::AdjacentPairs
                                                              : RopeLayout::RotateHalf;
  hp.attn_qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  hp.qk_norm = f.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
  hp.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  if (const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
      emb && emb->shape.size() == 2) {
    hp.n_vocab = emb->shape[1];
  }
  if (hp.arch == "gemma3") {
    // llama.cpp's gemma3: every sixth layer global, the others sliding with RoPE base 10000;
    // embeddings times sqrt(hidden); the norms (stored as 1 + w) after attention and feed-forward.
    if (hp.sliding_window <= 0) fail("{}: gemma3 needs gemma3.attention.sliding_window", f.name());
    hp.sliding_layers.assign(size_t(hp.n_layer), false);
    for (int64_t l = 0; l < hp.n_layer; ++l) hp.sliding_layers[size_t(l)] = (l + 1) % 6 != 0;
    hp.rope_theta_sliding = 10000.0f;
    hp.embd_scale = float(std::sqrt(double(hp.n_embd)));
    hp.attn_scale = gemma3_gguf_attn_scale(hp);
    hp.post_norms = true;
    hp.ffn_act = FfnActivation::GeluTanh;
  }
  hp.bos_token = u64_or("tokenizer.ggml.bos_token_id", -1);
  hp.eos_token = u64_or("tokenizer.ggml.eos_token_id", -1);
  return hp;
}

class GgufSource final : public WeightSource {
 public:
  explicit GgufSource(const std::filesystem::path& path)
      : file_(GgufFile::open(path)), hp_(read_hparams(*file_)) {}

  std::string format() const override { return "gguf"; }
  const HParams& hparams() const override { return hp_; }
  std::optional<TensorRef> find(const std::string& name) const override {
    const GgufTensorInfo* t = file_->find_tensor(name);
    if (t == nullptr) return std::nullopt;
    return to_ref(*t);
  }
  std::vector<TensorRef> all_tensors() const override {
    std::vector<TensorRef> r;
    for (const auto& t : file_->tensors()) r.push_back(to_ref(t));
    return r;
  }
  std::string tokenizer_identity() const override {
    // Every tokenizer.* key and value, in file order, serialised as displayed in full.
    XXH3_state_t* st = XXH3_createState();
    XXH3_128bits_reset(st);
    for (const auto& [k, v] : file_->metadata()) {
      if (k.rfind("tokenizer.", 0) != 0) continue;
      XXH3_128bits_update(st, k.data(), k.size());
      hash_value(st, v);
    }
    const XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    return fmt::format("{:016x}{:016x}", h.high64, h.low64);
  }
  const GgufFile* gguf() const override { return file_.get(); }
  std::filesystem::path path() const override { return file_->name(); }

 private:
  static void hash_value(XXH3_state_t* st, const GgufValue& v) {
    const uint32_t t = uint32_t(v.type());
    XXH3_128bits_update(st, &t, sizeof t);
    if (v.type() == GgufType::STRING) {
      XXH3_128bits_update(st, v.as_string().data(), v.as_string().size());
    } else if (v.type() == GgufType::ARRAY) {
      for (const auto& e : v.as_array()) hash_value(st, e);
    } else if (v.is_float()) {
      const double d = v.as_f64();
      XXH3_128bits_update(st, &d, sizeof d);
    } else if (v.type() == GgufType::BOOL) {
      const uint8_t b = v.as_bool();
      XXH3_128bits_update(st, &b, 1);
    } else {
      const int64_t i = v.type() == GgufType::UINT64 ? int64_t(v.as_u64()) : v.as_i64();
      XXH3_128bits_update(st, &i, sizeof i);
    }
  }

  std::unique_ptr<GgufFile> file_;
  HParams hp_;
};

}  // namespace

std::unique_ptr<WeightSource> open_gguf_source(const std::filesystem::path& file) {
  return std::make_unique<GgufSource>(file);
}

}  // namespace ep
