#include "model/hf_config.h"

#include "core/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>

namespace ep {

namespace {

using nlohmann::json;

constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();

// A JSON value shown in a message: compact, on one line, cut when long.
std::string shown(const json& v) {
  std::string s = v.dump(-1, ' ', /*ensure_ascii=*/true);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// Typed access to the fields of one JSON object, with errors naming the file and the field.
// A field set to null counts as absent (transformers writes null for "use the default").
class Fields {
 public:
  Fields(const json& object, const std::string& path, std::string prefix = "")
      : object_(object), path_(path), prefix_(std::move(prefix)) {}

  std::string name(std::string_view key) const { return prefix_ + std::string(key); }

  const json* get(std::string_view key) const {
    const auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  const json& require(std::string_view key) const {
    const json* v = get(key);
    if (v == nullptr) fail("{}: missing field '{}'", path_, name(key));
    return *v;
  }

  int64_t to_int(std::string_view key, const json& v, int64_t lo, int64_t hi) const {
    int64_t i = 0;
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u > uint64_t(std::numeric_limits<int64_t>::max())) out_of_range(key, v, lo, hi);
      i = int64_t(u);
    } else if (v.is_number_integer()) {
      i = v.get<int64_t>();
    } else {
      fail("{}: field '{}' must be an integer, not {} {}", path_, name(key), v.type_name(),
           shown(v));
    }
    if (i < lo || i > hi) out_of_range(key, v, lo, hi);
    return i;
  }

  int64_t require_int(std::string_view key, int64_t lo = 1, int64_t hi = kMaxSize) const {
    return to_int(key, require(key), lo, hi);
  }
  int64_t int_or(std::string_view key, int64_t fallback, int64_t lo = 1,
                 int64_t hi = kMaxSize) const {
    const json* v = get(key);
    return v == nullptr ? fallback : to_int(key, *v, lo, hi);
  }

  // A finite number greater than zero.
  double to_positive(std::string_view key, const json& v) const {
    if (!v.is_number()) {
      fail("{}: field '{}' must be a number, not {} {}", path_, name(key), v.type_name(), shown(v));
    }
    const double d = v.get<double>();
    if (!std::isfinite(d) || d <= 0.0) {
      fail("{}: field '{}' is {}; it must be a positive number", path_, name(key), shown(v));
    }
    return d;
  }
  double require_positive(std::string_view key) const { return to_positive(key, require(key)); }
  double positive_or(std::string_view key, double fallback) const {
    const json* v = get(key);
    return v == nullptr ? fallback : to_positive(key, *v);
  }

  bool bool_or(std::string_view key, bool fallback) const {
    const json* v = get(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) {
      fail("{}: field '{}' must be true or false, not {} {}", path_, name(key), v->type_name(),
           shown(*v));
    }
    return v->get<bool>();
  }

  std::string to_string(std::string_view key, const json& v) const {
    if (!v.is_string()) {
      fail("{}: field '{}' must be a string, not {} {}", path_, name(key), v.type_name(), shown(v));
    }
    return v.get<std::string>();
  }
  std::string require_string(std::string_view key) const { return to_string(key, require(key)); }
  std::string string_or(std::string_view key, std::string fallback) const {
    const json* v = get(key);
    return v == nullptr ? fallback : to_string(key, *v);
  }

  // A token id: an integer, or a list of them (the first is taken); -1 when absent or empty.
  int64_t token_or_none(std::string_view key) const {
    const json* v = get(key);
    if (v == nullptr) return -1;
    if (v->is_array()) {
      if (v->empty()) return -1;
      return to_int(key, v->front(), 0, kMaxSize);
    }
    return to_int(key, *v, 0, kMaxSize);
  }

  [[noreturn]] void out_of_range(std::string_view key, const json& v, int64_t lo,
                                 int64_t hi) const {
    fail("{}: field '{}' is {}; it must be between {} and {}", path_, name(key), shown(v), lo, hi);
  }

 private:
  const json& object_;
  const std::string& path_;
  std::string prefix_;
};

std::string shown_string(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 80)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (s.size() > 80) out += "...";
  return out;
}

// RoPE settings: transformers v5 "rope_parameters" {rope_theta, rope_type, ...}, or v4 top-level
// "rope_theta" with an optional "rope_scaling" {rope_type (or type), ...}.
void read_rope(const Fields& top, const std::string& path, HParams& hp) {
  const json* scaling = nullptr;
  std::string prefix;
  if (const json* params = top.get("rope_parameters")) {
    if (!params->is_object()) {
      fail("{}: field 'rope_parameters' must be an object, not {}", path, params->type_name());
    }
    for (const auto& [key, value] : params->items()) {
      if (value.is_object()) {
        fail("{}: 'rope_parameters' has per-layer-type settings ('{}'), which are not supported",
             path, shown_string(key));
      }
    }
    scaling = params;
    prefix = "rope_parameters.";
    const Fields f(*params, path, prefix);
    hp.rope_theta = float(f.get("rope_theta") != nullptr ? f.require_positive("rope_theta")
                                                         : top.positive_or("rope_theta", 10000.0));
  } else {
    hp.rope_theta = float(top.positive_or("rope_theta", 10000.0));
    if (const json* legacy = top.get("rope_scaling")) {
      if (!legacy->is_object()) {
        fail("{}: field 'rope_scaling' must be an object or null, not {}", path,
             legacy->type_name());
      }
      scaling = legacy;
      prefix = "rope_scaling.";
    }
  }
  if (!std::isfinite(hp.rope_theta)) fail("{}: rope_theta is too large", path);

  hp.rope_scaling = RopeScaling{};
  if (scaling == nullptr) return;
  const Fields f(*scaling, path, prefix);
  const std::string type = f.get("rope_type") != nullptr ? f.require_string("rope_type")
                                                         : f.string_or("type", "default");

  if (const json* partial = f.get("partial_rotary_factor")) {
    if (f.to_positive("partial_rotary_factor", *partial) != 1.0) {
      fail("{}: '{}partial_rotary_factor' {} is not supported (only 1.0)", path, prefix,
           shown(*partial));
    }
  }

  if (type == "default") return;
  if (type == "linear") {
    hp.rope_scaling.type = RopeScaling::Type::Linear;
    hp.rope_scaling.factor = float(f.require_positive("factor"));
    return;
  }
  if (type == "llama3") {
    RopeScaling& s = hp.rope_scaling;
    s.type = RopeScaling::Type::Llama3;
    s.factor = float(f.require_positive("factor"));
    s.low_freq_factor = float(f.require_positive("low_freq_factor"));
    s.high_freq_factor = float(f.require_positive("high_freq_factor"));
    s.original_max_position = f.require_int("original_max_position_embeddings");
    if (!(s.high_freq_factor > s.low_freq_factor)) {
      fail("{}: '{}high_freq_factor' ({}) must be greater than '{}low_freq_factor' ({})", path,
           prefix, s.high_freq_factor, prefix, s.low_freq_factor);
    }
    return;
  }
  fail("{}: unsupported RoPE type '{}' in '{}' (supported: default, linear, llama3)", path,
       shown_string(type), prefix.substr(0, prefix.size() - 1));
}

// Qwen2 applies its sliding window only with use_sliding_window, and then only to the layers that
// layer_types (v5) or max_window_layers (v4: layers >= max_window_layers) mark as sliding.
int64_t qwen2_sliding_window(const Fields& f, const std::string& path, int64_t n_layer) {
  if (!f.bool_or("use_sliding_window", false)) return 0;
  const int64_t window = f.int_or("sliding_window", 0, 1, kMaxSize);
  if (window == 0) return 0;
  int64_t n_sliding = 0;
  if (const json* types = f.get("layer_types")) {
    if (!types->is_array() || int64_t(types->size()) != n_layer) {
      fail("{}: field 'layer_types' must be a list of {} layer types", path, n_layer);
    }
    for (const auto& t : *types) {
      if (t == "sliding_attention") {
        ++n_sliding;
      } else if (t != "full_attention") {
        fail(
            "{}: unsupported layer type {} in 'layer_types' (supported: full_attention, "
            "sliding_attention)",
            path, shown(t));
      }
    }
  } else {
    const int64_t max_window_layers = f.int_or("max_window_layers", 28, 0, kMaxSize);
    n_sliding = std::max<int64_t>(0, n_layer - max_window_layers);
  }
  if (n_sliding == 0) return 0;
  if (n_sliding != n_layer) {
    fail("{}: sliding-window attention on only {} of {} layers is not supported", path, n_sliding,
         n_layer);
  }
  return window;
}

// Gemma 3's layers: sliding-window ones with their own RoPE base, and every few a global one with
// the model's RoPE (layer_types, or sliding_window_pattern: layer i is global when (i + 1) is a
// multiple of it); queries scaled by query_pre_attn_scalar^-1/2; embeddings scaled by
// sqrt(hidden_size); norms after attention and feed-forward; optional final logit soft-capping.
void read_gemma3(const Fields& f, const std::string& path, HParams& hp) {
  if (f.bool_or("attention_bias", false)) fail("{}: attention_bias=true is not supported", path);
  if (const json* cap = f.get("attn_logit_softcapping")) {
    fail("{}: attn_logit_softcapping {} is not supported", path, shown(*cap));
  }
  if (f.get("final_logit_softcapping") != nullptr) {
    hp.final_logit_softcap = float(f.require_positive("final_logit_softcapping"));
  }
  hp.attn_scale = float(1.0 / std::sqrt(f.positive_or("query_pre_attn_scalar", 256.0)));
  hp.embd_scale = float(std::sqrt(double(hp.n_embd)));
  hp.post_norms = true;
  hp.qk_norm = true;
  hp.attn_qkv_bias = false;
  hp.rope_layout = RopeLayout::RotateHalf;
  hp.sliding_window = f.int_or("sliding_window", 4096);
  hp.sliding_layers.assign(size_t(hp.n_layer), false);
  if (const json* types = f.get("layer_types")) {
    if (!types->is_array() || int64_t(types->size()) != hp.n_layer) {
      fail("{}: field 'layer_types' must be a list of {} layer types", path, hp.n_layer);
    }
    for (size_t l = 0; l < types->size(); ++l) {
      const json& t = (*types)[l];
      if (t != "sliding_attention" && t != "full_attention") {
        fail(
            "{}: unsupported layer type {} in 'layer_types' (supported: full_attention, "
            "sliding_attention)",
            path, shown(t));
      }
      hp.sliding_layers[l] = t == "sliding_attention";
    }
  } else {
    const int64_t pattern = f.int_or("sliding_window_pattern", 6);
    for (int64_t l = 0; l < hp.n_layer; ++l) hp.sliding_layers[size_t(l)] = (l + 1) % pattern != 0;
  }
  // RoPE: v5 gives each layer type its parameters; v4 rope_theta (+ rope_scaling) for the global
  // layers and rope_local_base_freq for the sliding ones.
  const json* params = f.get("rope_parameters");
  if (params != nullptr && params->is_object() && params->contains("full_attention")) {
    const auto one = [&](const char* type, HParams& out) {
      if (!params->contains(type) || !(*params)[type].is_object()) {
        fail("{}: 'rope_parameters' has no settings for '{}'", path, type);
      }
      const json wrapped = {{"rope_parameters", (*params)[type]}};
      read_rope(Fields(wrapped, path), path, out);
    };
    one("full_attention", hp);
    HParams sliding;
    one("sliding_attention", sliding);
    if (sliding.rope_scaling.type != RopeScaling::Type::None) {
      fail("{}: scaled RoPE on the sliding layers is not supported", path);
    }
    hp.rope_theta_sliding = sliding.rope_theta;
  } else {
    read_rope(f, path, hp);
    hp.rope_theta_sliding = float(f.positive_or("rope_local_base_freq", 10000.0));
  }
}

HParams parse_fields(const json& config, const std::string& path) {
  if (!config.is_object()) fail("{}: not a JSON object", path);
  const Fields f(config, path);
  HParams hp;
  hp.arch = f.require_string("model_type");
  const bool llama = hp.arch == "llama";
  const bool mistral = hp.arch == "mistral";
  const bool qwen2 = hp.arch == "qwen2";
  const bool qwen3 = hp.arch == "qwen3";
  const bool phi3 = hp.arch == "phi3";
  const bool gemma3 = hp.arch == "gemma3_text";
  if (hp.arch == "gemma3") {
    fail("{}: a Gemma 3 multimodal model: give the text model's directory (gemma3_text)", path);
  }
  if (!llama && !mistral && !qwen2 && !qwen3 && !phi3 && !gemma3) {
    fail(
        "{}: unknown architecture '{}' (supported: llama, mistral, qwen2, qwen3, phi3, "
        "gemma3_text)",
        path, shown_string(hp.arch));
  }
  if (gemma3) hp.arch = "gemma3";  // GGUF's name, and what the loader and the layer loop check

  hp.n_vocab = f.require_int("vocab_size");
  hp.n_embd = f.require_int("hidden_size");
  hp.n_layer = f.require_int("num_hidden_layers");
  hp.n_head = f.require_int("num_attention_heads");
  hp.n_head_kv = f.int_or("num_key_value_heads", hp.n_head);
  hp.n_ff = f.require_int("intermediate_size");
  // Defaults for absent fields are those of the transformers config classes.
  hp.n_ctx_train = f.int_or("max_position_embeddings", llama     ? 2048
                                                       : mistral ? 4096 * 32
                                                       : phi3    ? 4096
                                                       : gemma3  ? 131072
                                                                 : 32768);
  hp.rms_norm_eps = float(f.positive_or("rms_norm_eps", phi3 ? 1e-5 : 1e-6));
  hp.tied_embeddings = f.bool_or("tie_word_embeddings", gemma3);
  hp.bos_token = f.token_or_none("bos_token_id");
  hp.eos_token = f.token_or_none("eos_token_id");

  if (f.get("head_dim") != nullptr) {
    hp.head_dim = f.require_int("head_dim");
  } else if (qwen3 || gemma3) {
    hp.head_dim = qwen3 ? 128 : 256;  // the config classes' defaults, whatever the hidden size
  } else {
    if (hp.n_embd % hp.n_head != 0) {
      fail(
          "{}: hidden_size {} is not divisible by num_attention_heads {} (and no head_dim is "
          "given)",
          path, hp.n_embd, hp.n_head);
    }
    hp.head_dim = hp.n_embd / hp.n_head;
  }
  if (hp.head_dim % 2 != 0) fail("{}: head_dim {} must be even for RoPE", path, hp.head_dim);
  if (hp.n_head_kv > hp.n_head || hp.n_head % hp.n_head_kv != 0) {
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", path, hp.n_head,
         hp.n_head_kv);
  }

  if (gemma3) {
    const std::string act = f.string_or("hidden_activation", "gelu_pytorch_tanh");
    if (act != "gelu_pytorch_tanh") {
      fail("{}: hidden_activation '{}' is not supported (only gelu_pytorch_tanh)", path,
           shown_string(act));
    }
    hp.ffn_act = FfnActivation::GeluTanh;
  } else if (const std::string act = f.string_or("hidden_act", "silu"); act != "silu") {
    fail("{}: hidden_act '{}' is not supported (only silu)", path, shown_string(act));
  }

  if (llama) {
    // Note: in transformers, llama's attention_bias also gives o_proj a bias.
    hp.attn_qkv_bias = f.bool_or("attention_bias", false);
    if (f.bool_or("mlp_bias", false)) fail("{}: mlp_bias=true is not supported", path);
    hp.sliding_window = 0;
  } else if (mistral) {
    hp.attn_qkv_bias = false;
    // MistralConfig's default window is 4096 when the key is absent; null means none.
    const auto it = config.find("sliding_window");
    hp.sliding_window = it == config.end() ? 4096 : f.int_or("sliding_window", 0);
  } else if (phi3) {
    hp.attn_qkv_bias = false;
    hp.sliding_window = f.int_or("sliding_window", 0);  // Phi3Config: none unless given
    if (const json* partial = f.get("partial_rotary_factor")) {
      if (f.to_positive("partial_rotary_factor", *partial) != 1.0) {
        fail("{}: partial_rotary_factor {} is not supported (only 1.0)", path, shown(*partial));
      }
    }
  } else if (gemma3) {
    read_gemma3(f, path, hp);
    return hp;
  } else if (qwen3) {
    // Qwen3's attention_bias gives q, k, v and o biases (o's is optional when loading).
    hp.attn_qkv_bias = f.bool_or("attention_bias", false);
    hp.qk_norm = true;
    hp.sliding_window = qwen2_sliding_window(f, path, hp.n_layer);
  } else {
    hp.attn_qkv_bias = true;
    hp.sliding_window = qwen2_sliding_window(f, path, hp.n_layer);
  }

  hp.rope_layout = RopeLayout::RotateHalf;
  read_rope(f, path, hp);
  return hp;
}

}  // namespace

HParams parse_hf_config(const nlohmann::json& config, const std::string& path_for_errors) {
  try {
    return parse_fields(config, path_for_errors);
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    fail("{}: {}", path_for_errors, what);
  }
}

HParams load_hf_config(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "config.json";
  const std::string where = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open (is {} a Hugging Face model directory?)", where, dir.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("{}: cannot read", where);
  json config;
  try {
    config = json::parse(text.str());
  } catch (const json::exception& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    fail("{}: not valid JSON: {}", where, what);
  }
  return parse_hf_config(config, where);
}

}  // namespace ep
