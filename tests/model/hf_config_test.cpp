#include "model/hf_config.h"

#include "core/error.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <initializer_list>

namespace ep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ScratchDir;

fs::path model_dir(const std::string& name) {
  return test::fixtures_dir() / "models" / name;
}

json fixture_config(const std::string& name) {
  return json::parse(test::read_file(model_dir(name) / "config.json"));
}

const char* const kFixtures[] = {"llama-gqa", "llama3-rope", "qwen2-bias", "qwen2-bias-bf16",
                                 "mistral-mha"};

void expect_same(const HParams& a, const HParams& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_layer, b.n_layer);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.n_head_kv, b.n_head_kv);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.n_ff, b.n_ff);
  EXPECT_EQ(a.n_ctx_train, b.n_ctx_train);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position, b.rope_scaling.original_max_position);
  EXPECT_EQ(a.rope_layout, b.rope_layout);
  EXPECT_EQ(a.attn_qkv_bias, b.attn_qkv_bias);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.bos_token, b.bos_token);
  EXPECT_EQ(a.eos_token, b.eos_token);
}

// Rewrites a transformers v5 config ("rope_parameters") in the v4 spelling: top-level
// "rope_theta" and, for scaled RoPE, "rope_scaling".
json to_v4(json config) {
  json params = config.at("rope_parameters");
  config.erase("rope_parameters");
  config["rope_theta"] = params.at("rope_theta");
  params.erase("rope_theta");
  if (params.at("rope_type") == "default") {
    config["rope_scaling"] = nullptr;
  } else {
    config["rope_scaling"] = params;
  }
  return config;
}

const std::string kPath = "/models/x/config.json";

void expect_error(const json& config, std::initializer_list<std::string> parts) {
  try {
    parse_hf_config(config, kPath);
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(kPath + ": ", 0), 0u) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    for (const auto& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << what << "\n  lacks: " << p;
    return;
  }
  ADD_FAILURE() << "no ep::Error for " << config.dump();
}

TEST(ParserHfConfig, LlamaGqa) {
  const HParams hp = load_hf_config(model_dir("llama-gqa"));
  EXPECT_EQ(hp.arch, "llama");
  EXPECT_EQ(hp.n_vocab, 1000);
  EXPECT_EQ(hp.n_embd, 64);
  EXPECT_EQ(hp.n_layer, 3);
  EXPECT_EQ(hp.n_head, 4);
  EXPECT_EQ(hp.n_head_kv, 2);
  EXPECT_EQ(hp.head_dim, 16);
  EXPECT_EQ(hp.n_ff, 176);
  EXPECT_EQ(hp.n_ctx_train, 512);
  EXPECT_EQ(hp.rms_norm_eps, 1e-5f);
  EXPECT_EQ(hp.rope_theta, 10000.0f);
  EXPECT_EQ(hp.rope_scaling.type, RopeScaling::Type::None);
  EXPECT_EQ(hp.rope_layout, RopeLayout::RotateHalf);
  EXPECT_FALSE(hp.attn_qkv_bias);
  EXPECT_FALSE(hp.tied_embeddings);
  EXPECT_EQ(hp.sliding_window, 0);
  EXPECT_EQ(hp.bos_token, 1);
  EXPECT_EQ(hp.eos_token, 2);
}

TEST(ParserHfConfig, Llama3Rope) {
  const HParams hp = load_hf_config(model_dir("llama3-rope"));
  EXPECT_EQ(hp.arch, "llama");
  EXPECT_EQ(hp.n_embd, 96);
  EXPECT_EQ(hp.n_head, 4);
  EXPECT_EQ(hp.n_head_kv, 1);
  EXPECT_EQ(hp.head_dim, 32);
  EXPECT_EQ(hp.n_ff, 256);
  EXPECT_TRUE(hp.tied_embeddings);
  EXPECT_EQ(hp.rope_theta, 500000.0f);
  EXPECT_EQ(hp.rope_scaling.type, RopeScaling::Type::Llama3);
  EXPECT_EQ(hp.rope_scaling.factor, 8.0f);
  EXPECT_EQ(hp.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_EQ(hp.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(hp.rope_scaling.original_max_position, 64);
}

TEST(ParserHfConfig, Qwen2Bias) {
  for (const char* name : {"qwen2-bias", "qwen2-bias-bf16"}) {
    SCOPED_TRACE(name);
    const HParams hp = load_hf_config(model_dir(name));
    EXPECT_EQ(hp.arch, "qwen2");
    EXPECT_EQ(hp.n_embd, 64);
    EXPECT_EQ(hp.n_layer, 3);
    EXPECT_EQ(hp.n_head, 4);
    EXPECT_EQ(hp.n_head_kv, 2);
    EXPECT_EQ(hp.head_dim, 16);  // no head_dim in the file: hidden / heads
    EXPECT_EQ(hp.n_ff, 160);
    EXPECT_EQ(hp.rope_theta, 1000000.0f);
    EXPECT_EQ(hp.rope_scaling.type, RopeScaling::Type::None);
    EXPECT_TRUE(hp.attn_qkv_bias);
    EXPECT_TRUE(hp.tied_embeddings);
    EXPECT_EQ(hp.sliding_window, 0);  // use_sliding_window is false
    EXPECT_EQ(hp.rope_layout, RopeLayout::RotateHalf);
  }
}

TEST(ParserHfConfig, MistralMha) {
  const HParams hp = load_hf_config(model_dir("mistral-mha"));
  EXPECT_EQ(hp.arch, "mistral");
  EXPECT_EQ(hp.n_layer, 2);
  EXPECT_EQ(hp.n_head, 4);
  EXPECT_EQ(hp.n_head_kv, 4);
  EXPECT_EQ(hp.head_dim, 16);
  EXPECT_EQ(hp.n_ff, 128);
  EXPECT_EQ(hp.sliding_window, 64);
  EXPECT_FALSE(hp.attn_qkv_bias);
  EXPECT_FALSE(hp.tied_embeddings);
  EXPECT_EQ(hp.rope_theta, 10000.0f);
}

TEST(ParserHfConfig, V4SpellingGivesIdenticalHParams) {
  for (const char* name : kFixtures) {
    SCOPED_TRACE(name);
    const HParams v5 = load_hf_config(model_dir(name));
    ScratchDir dir;
    const json v4 = to_v4(fixture_config(name));
    ASSERT_FALSE(v4.contains("rope_parameters"));
    test::write_file(dir / "config.json", v4.dump(2));
    expect_same(load_hf_config(dir.path()), v5);
  }
}

TEST(ParserHfConfig, V4LegacyTypeKeyAndLinearScaling) {
  json c = to_v4(fixture_config("llama-gqa"));
  c["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  HParams hp = parse_hf_config(c, kPath);
  EXPECT_EQ(hp.rope_scaling.type, RopeScaling::Type::Linear);
  EXPECT_EQ(hp.rope_scaling.factor, 4.0f);

  c = fixture_config("llama3-rope");
  c["rope_parameters"]["rope_type"] = "linear";
  hp = parse_hf_config(c, kPath);
  EXPECT_EQ(hp.rope_scaling.type, RopeScaling::Type::Linear);
  EXPECT_EQ(hp.rope_scaling.factor, 8.0f);
  EXPECT_EQ(hp.rope_theta, 500000.0f);

  // A v4 llama3 config as Meta ships it.
  c = to_v4(fixture_config("llama3-rope"));
  c["rope_scaling"] = {{"factor", 32.0},
                       {"high_freq_factor", 4.0},
                       {"low_freq_factor", 1.0},
                       {"original_max_position_embeddings", 8192},
                       {"rope_type", "llama3"}};
  hp = parse_hf_config(c, kPath);
  EXPECT_EQ(hp.rope_scaling.type, RopeScaling::Type::Llama3);
  EXPECT_EQ(hp.rope_scaling.factor, 32.0f);
  EXPECT_EQ(hp.rope_scaling.original_max_position, 8192);
}

TEST(ParserHfConfig, Defaults) {
  json c = fixture_config("llama-gqa");
  for (const char* key : {"num_key_value_heads", "head_dim", "tie_word_embeddings", "bos_token_id",
                          "eos_token_id", "rope_parameters", "attention_bias"}) {
    c.erase(key);
  }
  HParams hp = parse_hf_config(c, kPath);
  EXPECT_EQ(hp.n_head_kv, 4);
  EXPECT_EQ(hp.head_dim, 16);
  EXPECT_FALSE(hp.tied_embeddings);
  EXPECT_FALSE(hp.attn_qkv_bias);
  EXPECT_EQ(hp.bos_token, -1);
  EXPECT_EQ(hp.eos_token, -1);
  EXPECT_EQ(hp.rope_theta, 10000.0f);
  EXPECT_EQ(hp.rope_scaling.type, RopeScaling::Type::None);

  c = fixture_config("llama3-rope");
  c["head_dim"] = nullptr;  // null: hidden / heads
  c["eos_token_id"] = json::array({128001, 128008, 128009});
  c["attention_bias"] = true;
  hp = parse_hf_config(c, kPath);
  EXPECT_EQ(hp.head_dim, 24);
  EXPECT_EQ(hp.eos_token, 128001);
  EXPECT_TRUE(hp.attn_qkv_bias);

  // An explicit head_dim that differs from hidden / heads.
  c = fixture_config("llama-gqa");
  c["head_dim"] = 32;
  EXPECT_EQ(parse_hf_config(c, kPath).head_dim, 32);
}

TEST(ParserHfConfig, SlidingWindow) {
  json c = fixture_config("mistral-mha");
  c["sliding_window"] = nullptr;
  EXPECT_EQ(parse_hf_config(c, kPath).sliding_window, 0);
  c["sliding_window"] = 4096;
  EXPECT_EQ(parse_hf_config(c, kPath).sliding_window, 4096);

  c = fixture_config("qwen2-bias");
  c["sliding_window"] = 128;
  EXPECT_EQ(parse_hf_config(c, kPath).sliding_window, 0);  // use_sliding_window false
  c["use_sliding_window"] = true;
  c["layer_types"] = {"sliding_attention", "sliding_attention", "sliding_attention"};
  EXPECT_EQ(parse_hf_config(c, kPath).sliding_window, 128);
  c["layer_types"] = {"full_attention", "full_attention", "full_attention"};
  EXPECT_EQ(parse_hf_config(c, kPath).sliding_window, 0);
  c["layer_types"] = {"full_attention", "sliding_attention", "sliding_attention"};
  expect_error(c, {"2 of 3", "not supported"});
  // v4: no layer_types; layers >= max_window_layers slide.
  c.erase("layer_types");
  c["max_window_layers"] = 0;
  EXPECT_EQ(parse_hf_config(c, kPath).sliding_window, 128);
  c["max_window_layers"] = 28;
  EXPECT_EQ(parse_hf_config(c, kPath).sliding_window, 0);
  c["max_window_layers"] = 2;
  expect_error(c, {"not supported"});

  c = fixture_config("llama-gqa");
  c["sliding_window"] = 16;  // llama has none
  EXPECT_EQ(parse_hf_config(c, kPath).sliding_window, 0);
}

TEST(ParserHfConfig, UnknownArchitecture) {
  json c = fixture_config("llama-gqa");
  c["model_type"] = "gemma";
  expect_error(c, {"unknown architecture 'gemma' (supported: llama, mistral, qwen2, qwen3, phi3, "
                   "gemma3_text)"});
  c["model_type"] = 7;
  expect_error(c, {"'model_type'", "string"});
  c.erase("model_type");
  expect_error(c, {"missing field 'model_type'"});
}

TEST(ParserHfConfig, Qwen3AndPhi3) {
  json c = fixture_config("llama-gqa");
  c["model_type"] = "qwen3";
  c.erase("head_dim");
  HParams hp = parse_hf_config(c, kPath);
  EXPECT_TRUE(hp.qk_norm);
  EXPECT_FALSE(hp.attn_qkv_bias);
  EXPECT_EQ(hp.head_dim, 128);  // Qwen3Config's default, not hidden / heads
  EXPECT_EQ(hp.rope_layout, RopeLayout::RotateHalf);
  c["attention_bias"] = true;
  EXPECT_TRUE(parse_hf_config(c, kPath).attn_qkv_bias);

  c = fixture_config("llama-gqa");
  c["model_type"] = "phi3";
  c["sliding_window"] = 2047;
  hp = parse_hf_config(c, kPath);
  EXPECT_FALSE(hp.qk_norm);
  EXPECT_EQ(hp.sliding_window, 2047);
  c["sliding_window"] = nullptr;
  EXPECT_EQ(parse_hf_config(c, kPath).sliding_window, 0);
  c["partial_rotary_factor"] = 0.75;
  expect_error(c, {"partial_rotary_factor 0.75 is not supported"});
  c.erase("partial_rotary_factor");
  c["rope_parameters"] = {{"rope_type", "longrope"}, {"rope_theta", 10000.0}};
  expect_error(c, {"unsupported RoPE type 'longrope'"});
}

TEST(ParserHfConfig, UnsupportedRopeTypes) {
  for (const char* type : {"yarn", "dynamic", "longrope", "su", "mrope"}) {
    SCOPED_TRACE(type);
    json c = fixture_config("llama3-rope");
    c["rope_parameters"]["rope_type"] = type;
    expect_error(c, {std::string("unsupported RoPE type '") + type + "'", "rope_parameters",
                     "default, linear, llama3"});
    json v4 = to_v4(fixture_config("llama3-rope"));
    v4["rope_scaling"]["rope_type"] = type;
    expect_error(v4, {std::string("'") + type + "'", "rope_scaling"});
  }
}

TEST(ParserHfConfig, BadRopeFields) {
  json c = fixture_config("llama3-rope");
  c["rope_parameters"].erase("low_freq_factor");
  expect_error(c, {"missing field 'rope_parameters.low_freq_factor'"});
  c = fixture_config("llama3-rope");
  c["rope_parameters"]["high_freq_factor"] = 1.0;
  expect_error(c, {"high_freq_factor"});
  c = fixture_config("llama3-rope");
  c["rope_parameters"]["factor"] = "8";
  expect_error(c, {"'rope_parameters.factor'", "number"});
  c = fixture_config("llama3-rope");
  c["rope_parameters"]["original_max_position_embeddings"] = 64.5;
  expect_error(c, {"original_max_position_embeddings", "integer"});
  c = fixture_config("llama-gqa");
  c["rope_parameters"]["rope_theta"] = -1.0;
  expect_error(c, {"rope_theta", "positive"});
  c = fixture_config("llama-gqa");
  c["rope_parameters"] = json::array({1, 2});
  expect_error(c, {"rope_parameters"});
  c = fixture_config("llama-gqa");
  c["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}}}};
  expect_error(c, {"per-layer-type"});
  c = to_v4(fixture_config("llama-gqa"));
  c["rope_scaling"] = "linear";
  expect_error(c, {"rope_scaling"});
  c = to_v4(fixture_config("llama-gqa"));
  c["rope_theta"] = "10000";
  expect_error(c, {"'rope_theta'", "number"});
}

TEST(ParserHfConfig, MissingAndMistypedFields) {
  for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                          "intermediate_size"}) {
    SCOPED_TRACE(key);
    json c = fixture_config("qwen2-bias");
    c.erase(key);
    expect_error(c, {std::string("missing field '") + key + "'"});
    c[key] = nullptr;
    expect_error(c, {std::string("missing field '") + key + "'"});
    c[key] = "64";
    expect_error(c, {std::string("'") + key + "'", "integer"});
    c[key] = 64.5;
    expect_error(c, {std::string("'") + key + "'", "integer"});
    c[key] = 0;
    expect_error(c, {std::string("'") + key + "'", "between"});
    c[key] = -4;
    expect_error(c, {std::string("'") + key + "'", "between"});
    c[key] = 1ull << 40;
    expect_error(c, {std::string("'") + key + "'", "between"});
  }
  json c = fixture_config("qwen2-bias");
  c["tie_word_embeddings"] = "yes";
  expect_error(c, {"'tie_word_embeddings'", "true or false"});
  c = fixture_config("qwen2-bias");
  c["rms_norm_eps"] = 0;
  expect_error(c, {"'rms_norm_eps'", "positive"});
  c = fixture_config("qwen2-bias");
  c["eos_token_id"] = "</s>";
  expect_error(c, {"'eos_token_id'"});
  c = fixture_config("qwen2-bias");
  c["hidden_act"] = "gelu";
  expect_error(c, {"hidden_act", "gelu"});
  c = fixture_config("llama-gqa");
  c["mlp_bias"] = true;
  expect_error(c, {"mlp_bias"});
  expect_error(json::array({1, 2}), {"not a JSON object"});
}

TEST(ParserHfConfig, InconsistentHeads) {
  json c = fixture_config("llama-gqa");
  c["num_key_value_heads"] = 3;
  expect_error(c, {"num_attention_heads 4", "num_key_value_heads 3"});
  c["num_key_value_heads"] = 8;
  expect_error(c, {"num_key_value_heads 8"});
  c = fixture_config("qwen2-bias");
  c["num_attention_heads"] = 5;  // 64 / 5, no head_dim
  c["num_key_value_heads"] = 5;
  expect_error(c, {"hidden_size 64", "num_attention_heads 5"});
  c = fixture_config("llama-gqa");
  c["head_dim"] = 15;
  expect_error(c, {"head_dim 15", "even"});
}

TEST(ParserHfConfig, FileErrors) {
  ScratchDir dir;
  expect_error(json(), {});  // null config
  try {
    load_hf_config(dir.path());
    ADD_FAILURE() << "no error for a missing config.json";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "config.json").string() + ": "), std::string::npos)
        << e.what();
  }
  test::write_file(dir / "config.json", "{\"model_type\": \"llama\",\n");
  try {
    load_hf_config(dir.path());
    ADD_FAILURE() << "no error for bad JSON";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind((dir / "config.json").string() + ": not valid JSON", 0), 0u) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace ep
