// Weights and hyper-parameters from a Hugging Face directory (config.json + *.safetensors).
#include "core/error.h"
#include "model/hf_config.h"
#include "model/safetensors.h"
#include "model/weight_source.h"

#include <xxhash.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace ep {

std::optional<std::string> hf_to_gguf_name(const std::string& hf, bool gemma) {
  static const std::map<std::string, std::string, std::less<>> kGlobal = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  static const std::map<std::string, std::string, std::less<>> kLayer = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.qkv_proj.weight", "attn_qkv.weight"},  // Phi-3: q, k and v rows in one
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.o_proj.bias", "attn_output.bias"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.gate_up_proj.weight", "ffn_up.weight"},  // Phi-3: gate rows, then up rows (as GGUF)
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  if (auto it = kGlobal.find(hf); it != kGlobal.end()) return it->second;
  static const std::regex kLayerName(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch m;
  static const std::map<std::string, std::string, std::less<>> kGemmaNorms = {
      {"post_attention_layernorm.weight", "post_attention_norm.weight"},
      {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
      {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
  };
  if (std::regex_match(hf, m, kLayerName)) {
    if (auto it = kGemmaNorms.find(m[2].str()); gemma && it != kGemmaNorms.end()) {
      return "blk." + m[1].str() + "." + it->second;
    }
    if (auto it = kLayer.find(m[2].str()); it != kLayer.end()) {
      return "blk." + m[1].str() + "." + it->second;
    }
  }
  return std::nullopt;
}

namespace {

class HfSource final : public WeightSource {
 public:
  explicit HfSource(const std::filesystem::path& dir)
      : dir_(dir), hp_(load_hf_config(dir)), archive_(SafetensorsArchive::open_directory(dir)) {
    for (const auto& t : archive_->tensors()) {
      if (auto g = hf_to_gguf_name(t.name, gemma())) by_gguf_name_.emplace(*g, &t);
    }
    const auto emb = by_gguf_name_.find("token_embd.weight");
    if (emb != by_gguf_name_.end() && emb->second->shape.size() == 2 &&
        emb->second->shape[0] != hp_.n_vocab) {
      fail("{}: config.json says vocab_size {} but model.embed_tokens.weight has {} rows",
           dir.string(), hp_.n_vocab, emb->second->shape[0]);
    }
    // transformers omits lm_head.weight from the files of tied models; trust the files.
    hp_.tied_embeddings = by_gguf_name_.count("output.weight") == 0;
  }

  std::string format() const override { return "hf"; }
  const HParams& hparams() const override { return hp_; }
  std::optional<TensorRef> find(const std::string& name) const override {
    const auto it = by_gguf_name_.find(name);
    if (it == by_gguf_name_.end()) return std::nullopt;
    return to_ref(name, *it->second);
  }
  std::vector<TensorRef> all_tensors() const override {
    std::vector<TensorRef> r;
    for (const auto& t : archive_->tensors()) {
      r.push_back(to_ref(hf_to_gguf_name(t.name, gemma()).value_or(t.name), t));
    }
    return r;
  }
  std::string tokenizer_identity() const override {
    XXH3_state_t* st = XXH3_createState();
    XXH3_128bits_reset(st);
    for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json"}) {
      std::ifstream in(dir_ / f, std::ios::binary);
      if (!in) continue;
      std::ostringstream ss;
      ss << in.rdbuf();
      const std::string bytes = ss.str();
      XXH3_128bits_update(st, f, std::strlen(f));
      XXH3_128bits_update(st, bytes.data(), bytes.size());
    }
    const XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    return fmt::format("{:016x}{:016x}", h.high64, h.low64);
  }
  std::filesystem::path path() const override { return dir_; }

 private:
  bool gemma() const { return hp_.arch == "gemma3"; }
  static TensorRef to_ref(const std::string& gguf_name, const SafetensorsTensor& t) {
    return TensorRef{gguf_name, t.name, t.dtype, t.shape, t.data, t.n_bytes};
  }

  std::filesystem::path dir_;
  HParams hp_;
  std::unique_ptr<SafetensorsArchive> archive_;
  std::map<std::string, const SafetensorsTensor*, std::less<>> by_gguf_name_;
};

}  // namespace

std::unique_ptr<WeightSource> open_hf_source(const std::filesystem::path& dir) {
  return std::make_unique<HfSource>(dir);
}

}  // namespace ep
