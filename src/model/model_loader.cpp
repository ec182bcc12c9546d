// Builds a Model from a weight source: checks every tensor's presence, type and shape against
// the hyper-parameters, so a bad file fails here with a precise message and never later.
#include "core/error.h"
#include "core/quant.h"
#include "core/quant_check.h"
#include "model/model.h"
#include "model/rope_scaling.h"

#include <fmt/ranges.h>

#include <cmath>

namespace ep {
namespace {

class Builder {
 public:
  explicit Builder(const WeightSource& src) : src_(src), where_(src.path().string()) {}

  TensorRef require(const std::string& name, const std::vector<int64_t>& shape) const {
    auto t = src_.find(name);
    if (!t) fail("{}: missing tensor '{}'", where_, name);
    if (t->shape != shape) {
      fail("{}: tensor '{}' ({}) has shape [{}], expected [{}]", where_, name, t->source_name,
           fmt::join(t->shape, ", "), fmt::join(shape, ", "));
    }
    return *t;
  }

  MatrixView matrix(const std::string& name, int64_t rows, int64_t cols) const {
    const TensorRef t = require(name, {rows, cols});
    check_scales(name, t.type, t.data, rows * cols);
    return MatrixView{t.type, rows, cols, t.data};
  }

  // Every block's f16 scale (and min) must be finite: one that is not would turn whole rows of
  // the product into inf or NaN, so the file is refused here, naming the tensor and block. Reads
  // the bytes of every block once (the first forward pass reads them all anyway).
  void check_scales(const std::string& name, DType type, const void* data, int64_t n) const {
    const int64_t per_block = dtype_block_elems(type);
    if (per_block == 1) return;
    if (const auto bad = find_nonfinite_scale(type, data, n / per_block)) {
      fail(
          "{}: tensor '{}' ({}): block {} of {} has a non-finite scale ({} = {}); the file is "
          "corrupt",
          where_, name, dtype_name(type), bad->block, n / per_block, bad->field, bad->value);
    }
  }

  std::vector<float> vector(const std::string& name, int64_t n) const {
    const TensorRef t = require(name, {n});
    if (dtype_block_elems(t.type) != 1) {
      fail("{}: 1-D tensor '{}' must be f32, f16 or bf16, not {}", where_, name,
           dtype_name(t.type));
    }
    std::vector<float> v(static_cast<size_t>(n));
    dequantize_row(t.type, t.data, v.data(), n);
    return v;
  }

  std::vector<float> optional_vector(const std::string& name, int64_t n) const {
    return src_.find(name) ? vector(name, n) : std::vector<float>{};
  }

 private:
  const WeightSource& src_;
  std::string where_;
};

// Rows [first, first + n) of `m`: a view into the same bytes (rows are stored one after another).
MatrixView row_range(const MatrixView& m, int64_t first, int64_t n) {
  return MatrixView{m.type, n, m.cols, m.row(first)};
}

void check_hparams(const HParams& hp, const std::string& where) {
  const auto positive = [&](int64_t v, const char* what) {
    if (v <= 0 || v > (int64_t(1) << 32)) fail("{}: invalid {} ({})", where, what, v);
  };
  positive(hp.n_vocab, "vocabulary size");
  positive(hp.n_embd, "hidden size");
  positive(hp.n_layer, "layer count");
  positive(hp.n_head, "head count");
  positive(hp.n_head_kv, "key/value head count");
  positive(hp.head_dim, "head dimension");
  positive(hp.n_ff, "feed-forward size");
  if (hp.n_head % hp.n_head_kv != 0) {
    fail("{}: {} heads are not a multiple of {} key/value heads", where, hp.n_head, hp.n_head_kv);
  }
  if (hp.head_dim % 2 != 0) fail("{}: head dimension {} is odd", where, hp.head_dim);
  if (!(hp.rms_norm_eps > 0.0f) || !std::isfinite(hp.rms_norm_eps)) {
    fail("{}: invalid rms_norm_eps {}", where, hp.rms_norm_eps);
  }
  if (!hp.sliding_layers.empty() && int64_t(hp.sliding_layers.size()) != hp.n_layer) {
    fail("{}: {} layer types for {} layers", where, hp.sliding_layers.size(), hp.n_layer);
  }
  if (!(hp.rope_theta > 0.0f) || !std::isfinite(hp.rope_theta)) {
    fail("{}: invalid rope theta {}", where, hp.rope_theta);
  }
}

}  // namespace

int64_t Model::n_params() const {
  int64_t n = 0;
  for (const auto& t : source->all_tensors()) {
    int64_t e = 1;
    for (int64_t d : t.shape) e *= d;
    n += e;
  }
  return n;
}

int64_t Model::weight_bytes() const {
  int64_t n = 0;
  for (const auto& t : source->all_tensors()) n += int64_t(t.n_bytes);
  return n;
}

std::unique_ptr<Model> load_model(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) fail("{}: no such file or directory", path.string());
  auto m = std::make_unique<Model>();
  m->path = path;
  m->source = std::filesystem::is_directory(path) ? open_hf_source(path) : open_gguf_source(path);
  m->hp = m->source->hparams();
  HParams& hp = m->hp;
  const std::string where = path.string();
  check_hparams(hp, where);

  const Builder b(*m->source);
  m->tok_embd = b.matrix("token_embd.weight", hp.n_vocab, hp.n_embd);
  const int64_t q_dim = hp.n_head * hp.head_dim;
  const int64_t kv_dim = hp.n_head_kv * hp.head_dim;
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    LayerWeights w;
    w.attn_norm = b.vector(p + "attn_norm.weight", hp.n_embd);
    if (hp.arch == "phi3") {
      const MatrixView qkv = b.matrix(p + "attn_qkv.weight", q_dim + 2 * kv_dim, hp.n_embd);
      w.wq = row_range(qkv, 0, q_dim);
      w.wk = row_range(qkv, q_dim, kv_dim);
      w.wv = row_range(qkv, q_dim + kv_dim, kv_dim);
    } else {
      w.wq = b.matrix(p + "attn_q.weight", q_dim, hp.n_embd);
      w.wk = b.matrix(p + "attn_k.weight", kv_dim, hp.n_embd);
      w.wv = b.matrix(p + "attn_v.weight", kv_dim, hp.n_embd);
    }
    if (hp.qk_norm) {
      w.q_norm = b.vector(p + "attn_q_norm.weight", hp.head_dim);
      w.k_norm = b.vector(p + "attn_k_norm.weight", hp.head_dim);
    }
    w.wo = b.matrix(p + "attn_output.weight", hp.n_embd, q_dim);
    if (hp.attn_qkv_bias) {
      w.bq = b.vector(p + "attn_q.bias", q_dim);
      w.bk = b.vector(p + "attn_k.bias", kv_dim);
      w.bv = b.vector(p + "attn_v.bias", kv_dim);
    }
    w.bo = b.optional_vector(p + "attn_output.bias", hp.n_embd);
    w.ffn_norm = b.vector(p + "ffn_norm.weight", hp.n_embd);
    if (hp.post_norms) {
      w.post_attn_norm = b.vector(p + "post_attention_norm.weight", hp.n_embd);
      w.post_ffn_norm = b.vector(p + "post_ffw_norm.weight", hp.n_embd);
    }
    if (hp.arch == "phi3") {
      const MatrixView gate_up = b.matrix(p + "ffn_up.weight", 2 * hp.n_ff, hp.n_embd);
      w.w_gate = row_range(gate_up, 0, hp.n_ff);
      w.w_up = row_range(gate_up, hp.n_ff, hp.n_ff);
    } else {
      w.w_gate = b.matrix(p + "ffn_gate.weight", hp.n_ff, hp.n_embd);
      w.w_up = b.matrix(p + "ffn_up.weight", hp.n_ff, hp.n_embd);
    }
    w.w_down = b.matrix(p + "ffn_down.weight", hp.n_embd, hp.n_ff);
    m->layers.push_back(std::move(w));
  }
  m->output_norm = b.vector("output_norm.weight", hp.n_embd);
  if (hp.arch == "gemma3" && m->source->format() == "hf") {
    // Gemma's norms scale by (1 + w); stored here as the factor itself, as GGUF files store them.
    const auto plus_one = [](std::vector<float>& v) {
      for (float& x : v) x += 1.0f;
    };
    plus_one(m->output_norm);
    for (LayerWeights& w : m->layers) {
      for (auto* v :
           {&w.attn_norm, &w.ffn_norm, &w.post_attn_norm, &w.post_ffn_norm, &w.q_norm, &w.k_norm}) {
        plus_one(*v);
      }
    }
  }
  m->output = hp.tied_embeddings ? m->tok_embd : b.matrix("output.weight", hp.n_vocab, hp.n_embd);

  if (m->source->find("rope_freqs.weight")) {
    m->rope_freq_factors = b.vector("rope_freqs.weight", hp.head_dim / 2);
  } else if (hp.rope_scaling.type == RopeScaling::Type::Llama3) {
    m->rope_freq_factors = llama3_freq_factors(hp);
  }
  return m;
}

}  // namespace ep
