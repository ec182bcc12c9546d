// The architectures whose layers differ from Llama's in one respect each, built from the
// llama-gqa fixture (tools/make_reference.py) by rewriting its Hugging Face directory:
//   phi3:  the same weights with q/k/v and gate/up fused into one matrix each (qkv_proj,
//          gate_up_proj) is the same model, so it must give transformers' float64 logits of
//          llama-gqa, from the directory and from the GGUF our converter writes (fused too);
//   gemma3: sliding-window and global layers, (1 + w) norms, four per layer, GELU, scaled
//          embeddings and scores, soft-capped logits; against the same plain forward pass, each
//          feature shown to matter, and the configurations it cannot run refused;
//   qwen3: Llama plus an RMS norm of each query and key head before RoPE (q_norm, k_norm);
//          checked against a plain float64 forward pass written here from transformers'
//          definition, and by the norm's invariance: scaling one head's projection rows changes
//          nothing.
#include "convert/converter.h"
#include "core/error.h"
#include "core/npy.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "model/fingerprint.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "runtime/transformer.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <map>

namespace ep {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kLlama = test::fixtures_dir() / "models" / "llama-gqa";

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
using Tensors = std::map<std::string, Tensor>;

Tensors read_tensors(const fs::path& dir) {
  Tensors out;
  const auto archive = SafetensorsArchive::open_directory(dir);
  for (const auto& t : archive->tensors()) {
    Tensor x{t.shape, std::vector<float>(size_t(t.n_elements()))};
    dequantize_row(t.dtype, t.data, x.data.data(), t.n_elements());
    out.emplace(t.name, std::move(x));
  }
  return out;
}

// A float32 safetensors file, as transformers writes one.
void write_safetensors(const fs::path& path, const Tensors& tensors) {
  json header = json::object();
  uint64_t at = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t n = t.data.size() * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {at, at + n}}};
    at += n;
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h += ' ';
  std::string bytes(8, '\0');
  const uint64_t len = h.size();
  std::memcpy(bytes.data(), &len, 8);
  bytes += h;
  for (const auto& [name, t] : tensors) {
    bytes.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
  }
  test::write_file(path, bytes);
}

Tensor concat_rows(const Tensor& a, const Tensor& b) {
  Tensor c{{a.shape[0] + b.shape[0], a.shape[1]}, a.data};
  c.data.insert(c.data.end(), b.data.begin(), b.data.end());
  return c;
}

std::string layer(int64_t l, const char* what) {
  return "model.layers." + std::to_string(l) + "." + what;
}

json llama_config() {
  return json::parse(test::read_file(kLlama / "config.json"));
}

fs::path write_model(const fs::path& dir, const json& config, const Tensors& tensors) {
  fs::create_directories(dir);
  test::write_file(dir / "config.json", config.dump(2));
  write_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

fs::path make_phi3(const fs::path& dir) {
  json config = llama_config();
  config["model_type"] = "phi3";
  config["architectures"] = {"Phi3ForCausalLM"};
  config["sliding_window"] = nullptr;
  config.erase("attention_bias");
  config.erase("mlp_bias");
  Tensors in = read_tensors(kLlama), out;
  const int64_t n_layer = config["num_hidden_layers"];
  for (auto& [name, t] : in) {
    if (name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos ||
        name.find("v_proj") != std::string::npos || name.find("gate_proj") != std::string::npos ||
        name.find("up_proj") != std::string::npos) {
      continue;
    }
    out.emplace(name, t);
  }
  for (int64_t l = 0; l < n_layer; ++l) {
    out[layer(l, "self_attn.qkv_proj.weight")] =
        concat_rows(concat_rows(in.at(layer(l, "self_attn.q_proj.weight")),
                                in.at(layer(l, "self_attn.k_proj.weight"))),
                    in.at(layer(l, "self_attn.v_proj.weight")));
    out[layer(l, "mlp.gate_up_proj.weight")] =
        concat_rows(in.at(layer(l, "mlp.gate_proj.weight")), in.at(layer(l, "mlp.up_proj.weight")));
  }
  return write_model(dir, config, out);
}

std::vector<float> logits_of(const fs::path& model_path, const std::vector<int32_t>& ids) {
  const auto model = load_model(model_path);
  ThreadPool pool(2);
  Transformer tf(*model, int64_t(ids.size()), pool);
  std::vector<float> logits;
  tf.forward(ids, logits, true);
  return logits;
}

double rel_l2(const std::vector<float>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

std::vector<double> widen(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

std::vector<int32_t> prompt(int n) {
  return parse_token_list(
      test::read_file(kLlama / "reference" / ("prompt_" + std::to_string(n) + ".txt")));
}

TEST(ArchVariants, Phi3FusedWeightsGiveTransformersLlamaLogits) {
  test::ScratchDir dir;
  const fs::path phi3 = make_phi3(dir / "phi3");
  const fs::path gguf = dir / "phi3.gguf";
  convert_hf_to_gguf(phi3, gguf, DType::F32);
  const auto file = GgufFile::open(gguf);
  EXPECT_EQ(file->get_string("general.architecture"), "phi3");
  ASSERT_NE(file->find_tensor("blk.0.attn_qkv.weight"), nullptr);
  EXPECT_EQ(file->find_tensor("blk.0.attn_q.weight"), nullptr);
  EXPECT_EQ(file->find_tensor("blk.0.ffn_gate.weight"), nullptr);
  EXPECT_EQ(file->find_tensor("blk.0.ffn_up.weight")->shape[1], 2 * 176);
  for (const int n : {8, 40, 150}) {
    const NpyArray ref = read_npy(kLlama / "reference" / ("logits_" + std::to_string(n) + ".npy"));
    for (const fs::path& m : {phi3, gguf}) {
      SCOPED_TRACE(m.string() + ", prompt " + std::to_string(n));
      EXPECT_LE(rel_l2(logits_of(m, prompt(n)), ref.data), 1e-5);
    }
  }
}

// ---- qwen3 --------------------------------------------------------------------------------

float wiggle(size_t i, float base, float amplitude) {
  return base + amplitude * float(std::sin(0.7 * double(i) + 0.3));
}

fs::path make_qwen3(const fs::path& dir, const std::map<std::string, float>& row_scale = {}) {
  json config = llama_config();
  config["model_type"] = "qwen3";
  config["architectures"] = {"Qwen3ForCausalLM"};
  config["use_sliding_window"] = false;
  config["rms_norm_eps"] = 1e-6;
  config.erase("mlp_bias");
  Tensors t = read_tensors(kLlama);
  const int64_t n_layer = config["num_hidden_layers"], hd = config["head_dim"];
  for (int64_t l = 0; l < n_layer; ++l) {
    Tensor q{{hd}, {}}, k{{hd}, {}};
    for (int64_t i = 0; i < hd; ++i) {
      q.data.push_back(wiggle(size_t(i + 7 * l), 1.0f, 0.3f));
      k.data.push_back(wiggle(size_t(i + 11 * l + 3), 0.9f, 0.4f));
    }
    t[layer(l, "self_attn.q_norm.weight")] = q;
    t[layer(l, "self_attn.k_norm.weight")] = k;
  }
  // Scale the rows of head 0 of each layer's named projection.
  for (const auto& [what, s] : row_scale) {
    for (int64_t l = 0; l < n_layer; ++l) {
      Tensor& w = t.at(layer(l, what.c_str()));
      for (int64_t i = 0; i < hd * w.shape[1]; ++i) w.data[size_t(i)] *= s;
    }
  }
  return write_model(dir, config, t);
}

// transformers' Qwen3 and Gemma 3 forward passes in float64, spelled out: embeddings (Gemma:
// times sqrt(hidden)); per layer x += o(attn(...)) with q/k = RMSNorm_head(proj(RMSNorm(x)))
// rotated by RoPE (halves; Gemma: the layer type's base), causal softmax attention with grouped
// heads (Gemma: scaled by query_pre_attn_scalar^-1/2, a sliding window on the sliding layers, the
// output normalised again); x += down(act(gate) * up) (silu; Gemma: GELU-tanh, its input and
// output normalised); logits = lm_head(RMSNorm(x)) (Gemma: soft-capped). Gemma's norms scale by
// 1 + w.
std::vector<double> reference_logits(const fs::path& dir, const std::vector<int32_t>& ids) {
  const json c = json::parse(test::read_file(dir / "config.json"));
  const Tensors t = read_tensors(dir);
  const int64_t d = c["hidden_size"], L = c["num_hidden_layers"], H = c["num_attention_heads"],
                Hkv = c["num_key_value_heads"], hd = c["head_dim"], ff = c["intermediate_size"],
                V = c["vocab_size"], T = int64_t(ids.size());
  const bool gemma = c["model_type"] == "gemma3_text";
  const double eps = c["rms_norm_eps"];
  const auto theta_of = [&](int64_t l) -> double {
    if (!gemma) return c["rope_parameters"]["rope_theta"];
    return c["rope_parameters"][c["layer_types"][size_t(l)].get<std::string>()]["rope_theta"];
  };
  const auto window_of = [&](int64_t l) -> int64_t {
    return gemma && c["layer_types"][size_t(l)] == "sliding_attention"
               ? c["sliding_window"].get<int64_t>()
               : int64_t(0);
  };
  const double scale =
      1.0 / std::sqrt(gemma ? c["query_pre_attn_scalar"].get<double>() : double(hd));
  using Vec = std::vector<double>;
  const auto w = [&](const std::string& name) -> const Tensor& { return t.at(name); };
  const auto norm = [&](const double* x, const Tensor& g, int64_t n, double* y) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
    const double inv = 1.0 / std::sqrt(ss / double(n) + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * ((gemma ? 1.0 : 0.0) + g.data[size_t(i)]);
  };
  const auto matvec = [&](const Tensor& m, const double* x, double* y) {
    const int64_t rows = m.shape[0], cols = m.shape[1];
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t j = 0; j < cols; ++j) s += double(m.data[size_t(r * cols + j)]) * x[j];
      y[r] = s;
    }
  };
  const auto rope = [&](double* v, int64_t pos, double theta) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      const double f = double(pos) / std::pow(theta, double(2 * i) / double(hd));
      const double a = v[i], b = v[i + hd / 2];
      v[i] = a * std::cos(f) - b * std::sin(f);
      v[i + hd / 2] = b * std::cos(f) + a * std::sin(f);
    }
  };
  Vec x(size_t(T * d));
  for (int64_t p = 0; p < T; ++p) {
    for (int64_t i = 0; i < d; ++i)
      x[size_t(p * d + i)] = w("model.embed_tokens.weight").data[size_t(ids[size_t(p)] * d + i)] *
                             (gemma ? std::sqrt(double(d)) : 1.0);
  }
  for (int64_t l = 0; l < L; ++l) {
    Vec q(size_t(T * H * hd)), k(size_t(T * Hkv * hd)), v(size_t(T * Hkv * hd)),
        xn(static_cast<size_t>(d));
    for (int64_t p = 0; p < T; ++p) {
      norm(&x[size_t(p * d)], w(layer(l, "input_layernorm.weight")), d, xn.data());
      matvec(w(layer(l, "self_attn.q_proj.weight")), xn.data(), &q[size_t(p * H * hd)]);
      matvec(w(layer(l, "self_attn.k_proj.weight")), xn.data(), &k[size_t(p * Hkv * hd)]);
      matvec(w(layer(l, "self_attn.v_proj.weight")), xn.data(), &v[size_t(p * Hkv * hd)]);
      for (int64_t h = 0; h < H; ++h) {
        double* qh = &q[size_t((p * H + h) * hd)];
        norm(qh, w(layer(l, "self_attn.q_norm.weight")), hd, qh);
        rope(qh, p, theta_of(l));
      }
      for (int64_t h = 0; h < Hkv; ++h) {
        double* kh = &k[size_t((p * Hkv + h) * hd)];
        norm(kh, w(layer(l, "self_attn.k_norm.weight")), hd, kh);
        rope(kh, p, theta_of(l));
      }
    }
    Vec attn(size_t(T * H * hd), 0.0), o(static_cast<size_t>(d));
    for (int64_t p = 0; p < T; ++p) {
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / Hkv);
        Vec s(size_t(p + 1));
        double mx = -1e300, sum = 0;
        const int64_t first = window_of(l) > 0 ? std::max<int64_t>(0, p - window_of(l) + 1) : 0;
        for (int64_t j = 0; j <= p; ++j) {
          if (j < first) {
            s[size_t(j)] = -1e300;
            continue;
          }
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i)
            dot += q[size_t((p * H + h) * hd + i)] * k[size_t((j * Hkv + g) * hd + i)];
          s[size_t(j)] = dot * scale;
          mx = std::max(mx, s[size_t(j)]);
        }
        for (auto& e : s) sum += (e = e < -1e299 ? 0.0 : std::exp(e - mx));
        for (int64_t j = 0; j <= p; ++j) {
          for (int64_t i = 0; i < hd; ++i)
            attn[size_t((p * H + h) * hd + i)] +=
                s[size_t(j)] / sum * v[size_t((j * Hkv + g) * hd + i)];
        }
      }
    }
    Vec gate(static_cast<size_t>(ff)), up(static_cast<size_t>(ff));
    for (int64_t p = 0; p < T; ++p) {
      matvec(w(layer(l, "self_attn.o_proj.weight")), &attn[size_t(p * H * hd)], o.data());
      if (gemma) norm(o.data(), w(layer(l, "post_attention_layernorm.weight")), d, o.data());
      for (int64_t i = 0; i < d; ++i) x[size_t(p * d + i)] += o[size_t(i)];
      norm(&x[size_t(p * d)],
           w(layer(l,
                   gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight")),
           d, xn.data());
      matvec(w(layer(l, "mlp.gate_proj.weight")), xn.data(), gate.data());
      matvec(w(layer(l, "mlp.up_proj.weight")), xn.data(), up.data());
      for (int64_t i = 0; i < ff; ++i) {
        const double g = gate[size_t(i)];
        gate[size_t(i)] =
            up[size_t(i)] *
            (gemma ? 0.5 * g * (1 + std::tanh(std::sqrt(2 / M_PI) * (g + 0.044715 * g * g * g)))
                   : g / (1 + std::exp(-g)));
      }
      matvec(w(layer(l, "mlp.down_proj.weight")), gate.data(), o.data());
      if (gemma) norm(o.data(), w(layer(l, "post_feedforward_layernorm.weight")), d, o.data());
      for (int64_t i = 0; i < d; ++i) x[size_t(p * d + i)] += o[size_t(i)];
    }
  }
  Vec logits(size_t(T * V)), xn(static_cast<size_t>(d));
  const Tensor& head =
      t.count("lm_head.weight") ? w("lm_head.weight") : w("model.embed_tokens.weight");
  for (int64_t p = 0; p < T; ++p) {
    norm(&x[size_t(p * d)], w("model.norm.weight"), d, xn.data());
    matvec(head, xn.data(), &logits[size_t(p * V)]);
  }
  if (gemma && c.contains("final_logit_softcapping") && !c["final_logit_softcapping"].is_null()) {
    const double cap = c["final_logit_softcapping"];
    for (double& l : logits) l = cap * std::tanh(l / cap);
  }
  return logits;
}

TEST(ArchVariants, Qwen3HeadNormsMatchAPlainFloat64ForwardPass) {
  test::ScratchDir dir;
  const fs::path qwen3 = make_qwen3(dir / "qwen3");
  const fs::path gguf = dir / "qwen3.gguf";
  convert_hf_to_gguf(qwen3, gguf, DType::F32);
  const auto file = GgufFile::open(gguf);
  EXPECT_EQ(file->get_string("general.architecture"), "qwen3");
  ASSERT_NE(file->find_tensor("blk.1.attn_k_norm.weight"), nullptr);
  EXPECT_TRUE(load_model(gguf)->hp.qk_norm);
  for (const int n : {8, 40}) {
    const std::vector<double> ref = reference_logits(qwen3, prompt(n));
    const std::vector<float> ours = logits_of(qwen3, prompt(n));
    SCOPED_TRACE("prompt " + std::to_string(n));
    EXPECT_LE(rel_l2(ours, ref), 1e-5);
    EXPECT_EQ(logits_of(gguf, prompt(n)), ours);  // the same numbers from the converted file
    // The head norms change the model: Llama's logits are far from these.
    const NpyArray llama =
        read_npy(kLlama / "reference" / ("logits_" + std::to_string(n) + ".npy"));
    EXPECT_GT(rel_l2(ours, llama.data), 0.05);
  }
}

TEST(ArchVariants, Qwen3QueriesAndKeysAreNormalisedPerHead) {
  test::ScratchDir dir;
  const auto base = logits_of(make_qwen3(dir / "a"), prompt(40));
  // Head 0's query rows times 3 and key rows times 0.25: normalised away.
  const auto scaled = logits_of(make_qwen3(dir / "b", {{"self_attn.q_proj.weight", 3.0f},
                                                       {"self_attn.k_proj.weight", 0.25f}}),
                                prompt(40));
  EXPECT_LE(rel_l2(scaled, widen(base)), 1e-4);
  // Value rows are not normalised: scaling them changes the output.
  const auto values =
      logits_of(make_qwen3(dir / "c", {{"self_attn.v_proj.weight", 3.0f}}), prompt(40));
  EXPECT_GT(rel_l2(values, widen(base)), 1e-2);
}

// ---- gemma3 -------------------------------------------------------------------------------

// llama-gqa's weights as a Gemma 3 text model: three layers (sliding, global, sliding) with a
// window shorter than the long prompts and their own RoPE bases, q/k norms, the two extra norms
// per layer, query_pre_attn_scalar unlike head_dim, soft-capped logits.
fs::path make_gemma3(const fs::path& dir, json extra = json::object()) {
  json config = llama_config();
  config["model_type"] = "gemma3_text";
  config["architectures"] = {"Gemma3ForCausalLM"};
  config["hidden_activation"] = "gelu_pytorch_tanh";
  config["rms_norm_eps"] = 1e-6;
  config["query_pre_attn_scalar"] = 24;
  config["sliding_window"] = 16;
  config["final_logit_softcapping"] = 2.0;
  config["attn_logit_softcapping"] = nullptr;
  config["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention"};
  config["rope_parameters"] = {
      {"full_attention", {{"rope_type", "default"}, {"rope_theta", 1000000.0}}},
      {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}};
  config.erase("mlp_bias");
  config.erase("hidden_act");
  config.update(extra);
  Tensors t = read_tensors(kLlama);
  const int64_t n_layer = config["num_hidden_layers"], hd = config["head_dim"],
                d = config["hidden_size"];
  if (n_layer != 3) throw std::runtime_error("the fixture changed: gemma3 wants 3 layers");
  size_t seed = 0;
  const auto norm = [&](int64_t n) {  // Gemma stores w of (1 + w): around 0
    Tensor v{{n}, {}};
    for (int64_t i = 0; i < n; ++i) v.data.push_back(wiggle(seed++, 0.0f, 0.3f));
    return v;
  };
  for (int64_t l = 0; l < n_layer; ++l) {
    t[layer(l, "self_attn.q_norm.weight")] = norm(hd);
    t[layer(l, "self_attn.k_norm.weight")] = norm(hd);
    t[layer(l, "pre_feedforward_layernorm.weight")] = norm(d);
    t[layer(l, "post_feedforward_layernorm.weight")] = norm(d);
    for (const char* n : {"input_layernorm.weight", "post_attention_layernorm.weight"}) {
      for (float& x : t.at(layer(l, n)).data) x -= 1.0f;  // Llama's around-1 norms as Gemma's w
    }
  }
  for (float& x : t.at("model.norm.weight").data) x -= 1.0f;
  return write_model(dir, config, t);
}

TEST(ArchVariants, Gemma3MatchesAPlainFloat64ForwardPass) {
  test::ScratchDir dir;
  const fs::path gemma = make_gemma3(dir / "gemma3");
  const auto model = load_model(gemma);
  EXPECT_EQ(model->hp.arch, "gemma3");
  EXPECT_EQ(model->hp.sliding_layers, (std::vector<bool>{true, false, true}));
  EXPECT_FLOAT_EQ(model->hp.embd_scale, 8.0f);
  for (const int n : {8, 40, 150}) {
    SCOPED_TRACE("prompt " + std::to_string(n));
    const std::vector<float> ours = logits_of(gemma, prompt(n));
    EXPECT_LE(rel_l2(ours, reference_logits(gemma, prompt(n))), 1e-5);
    for (const float v : ours) ASSERT_LE(std::abs(v), 2.0f);  // soft-capped at 2
  }
  // Each feature matters: without the window, or the sliding layers' own base, or with the
  // usual score scale, the logits of the long prompt move.
  const auto base = logits_of(gemma, prompt(40));
  for (const json& change :
       {json{{"sliding_window", 4096}},
        json{{"rope_parameters",
              {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 1000000.0}}},
               {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1000000.0}}}}}},
        json{{"query_pre_attn_scalar", 16}}, json{{"final_logit_softcapping", nullptr}}}) {
    SCOPED_TRACE(change.dump());
    EXPECT_GT(rel_l2(logits_of(make_gemma3(dir / "changed", change), prompt(40)), widen(base)),
              1e-3);
    fs::remove_all(dir / "changed");
  }
}

TEST(ArchVariants, Gemma3ConfigsTheEngineCannotRunAreRefused) {
  test::ScratchDir dir;
  for (const auto& [change, message] : std::vector<std::pair<json, std::string>>{
           {{{"attn_logit_softcapping", 50.0}}, "attn_logit_softcapping 50.0 is not supported"},
           {{{"hidden_activation", "relu"}}, "hidden_activation 'relu' is not supported"},
           {{{"layer_types", {"sliding_attention"}}}, "'layer_types' must be a list of 3"},
           {{{"model_type", "gemma3"}}, "multimodal"}}) {
    make_gemma3(dir / "m", change);
    try {
      load_model(dir / "m");
      ADD_FAILURE() << "loaded " << change.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    fs::remove_all(dir / "m");
  }
  // GGUF gemma3 files fix the layer pattern, the sliding RoPE base and the score scale, and have
  // no logit cap: a model that differs is not converted.
  make_gemma3(dir / "m");
  try {
    convert_hf_to_gguf(dir / "m", dir / "m.gguf", DType::F32);
    ADD_FAILURE() << "converted a gemma3 model GGUF cannot express";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("every sixth layer global"), std::string::npos)
        << e.what();
  }
}

// A Gemma 3 as llama.cpp's gemma3 files describe it (every sixth layer global, sliding RoPE base
// 10000, scores scaled by head_dim^-1/2, no logit cap): the converted GGUF, its norms stored as
// 1 + w, computes the directory's logits.
TEST(ArchVariants, Gemma3ConvertsToGgufAsLlamaCppLaysItOut) {
  test::ScratchDir dir;
  const json llama_like = {
      {"layer_types", {"sliding_attention", "sliding_attention", "sliding_attention"}},
      {"query_pre_attn_scalar", 16},
      {"final_logit_softcapping", nullptr},
      {"rope_parameters",
       {{"full_attention", {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 1000000.0}}},
        {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}}}};
  const fs::path hf = make_gemma3(dir / "hf", llama_like);
  const fs::path gguf = dir / "g.gguf";
  convert_hf_to_gguf(hf, gguf, DType::F32);
  const auto file = GgufFile::open(gguf);
  EXPECT_EQ(file->get_string("general.architecture"), "gemma3");
  EXPECT_EQ(file->get_u64("gemma3.attention.sliding_window"), 16u);
  ASSERT_NE(file->find_tensor("blk.2.post_ffw_norm.weight"), nullptr);
  const Tensors t = read_tensors(hf);
  const auto* norm = file->find_tensor("blk.0.post_attention_norm.weight");
  ASSERT_NE(norm, nullptr);
  float stored = 0;
  std::memcpy(&stored, norm->data + 3 * sizeof(float), sizeof stored);
  EXPECT_EQ(stored, t.at(layer(0, "post_attention_layernorm.weight")).data[3] + 1.0f);
  const auto a = load_model(hf), b = load_model(gguf);
  EXPECT_EQ(b->hp.sliding_layers, a->hp.sliding_layers);
  EXPECT_EQ(b->hp.attn_scale, a->hp.attn_scale);
  EXPECT_EQ(b->hp.rope_theta_sliding, a->hp.rope_theta_sliding);
  EXPECT_EQ(b->hp.rope_scaling.type, RopeScaling::Type::Linear);
  for (const int n : {8, 40}) {
    const std::vector<float> ours = logits_of(gguf, prompt(n));
    EXPECT_EQ(ours, logits_of(hf, prompt(n))) << "prompt " << n;
  }
}

// Cloud and edge must agree on everything that changes the numbers: the new fields are in the
// fingerprint (and absent from the others' canonical text, whose fingerprints stay as they were).
TEST(ArchVariants, TheFingerprintCoversTheNewFields) {
  test::ScratchDir dir;
  const auto a = load_model(make_gemma3(dir / "a"));
  const auto b = load_model(make_gemma3(dir / "b", {{"query_pre_attn_scalar", 16}}));
  EXPECT_NE(model_fingerprint(*a->source), model_fingerprint(*b->source));
  EXPECT_NE(canonical_hparams(a->hp).find(" softcap="), std::string::npos);
  const std::string llama = canonical_hparams(load_model(kLlama)->hp);
  EXPECT_EQ(llama.find("qk_norm"), std::string::npos);
  EXPECT_TRUE(llama.ends_with("window=0")) << llama;
}

// A prompt computed as [cloud prefix | edge suffix], the prefix's KV through the wire format,
// gives the monolithic logits (`edgeprompt logits --split`), the sliding layers included.
TEST(ArchVariants, SplitEqualsMonolithic) {
  test::ScratchDir dir;
  std::string tokens = test::read_file(kLlama / "reference" / "prompt_150.txt");
  tokens = tokens.substr(0, tokens.find('\n'));
  const auto logits = [&](const fs::path& model, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"logits", "--model", model.string(),           "--tokens",
                                     tokens,   "--out",   (dir / "l.npy").string(), "--threads",
                                     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = test::run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return read_npy(dir / "l.npy");
  };
  for (const fs::path& m :
       {make_phi3(dir / "phi3"), make_qwen3(dir / "qwen3"), make_gemma3(dir / "gemma3")}) {
    SCOPED_TRACE(m.filename().string());
    const NpyArray mono = logits(m, {});
    for (const int split : {1, 75, 149}) {
      const NpyArray parts = logits(m, {"--split", std::to_string(split)});
      ASSERT_EQ(parts.shape, mono.shape);
      const size_t from = size_t(split) * size_t(mono.shape[1]);
      const std::vector<float> tail(parts.data.begin() + long(from), parts.data.end());
      EXPECT_LE(rel_l2(tail, std::vector<double>(mono.data.begin() + long(from), mono.data.end())),
                1e-5)
          << "split " << split;
    }
  }
}

}  // namespace
}  // namespace ep
