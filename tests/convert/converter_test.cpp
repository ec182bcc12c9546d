// The Hugging Face -> GGUF converter (src/convert/converter.h): the tensors it writes and their
// types, exact values (f32, with the llama-arch q/k row permutation), rounding (f16/bf16) and
// quantisation bounds, the hyper-parameters, tokenizer and chat template that travel, atomic
// output, progress, and the errors for bad inputs.
#include "convert/converter.h"
#include "core/error.h"
#include "core/half.h"
#include "core/quant.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "model/weight_source.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <optional>

namespace ep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kModels = test::fixtures_dir() / "models";
const char* const kFixtures[] = {"llama-gqa", "llama3-rope", "mistral-mha", "qwen2-bias",
                                 "qwen2-bias-bf16"};
const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

// The GGUF name of a Hugging Face tensor name, written out here from the llama.cpp naming rather
// than taken from the project's own table.
std::optional<std::string> gguf_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) != 0) return std::nullopt;
  const size_t dot = hf.find('.', prefix.size());
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  const std::string rest = hf.substr(dot + 1);
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  for (const auto& [from, to] : kLayer) {
    if (rest == from) return "blk." + layer + "." + to;
  }
  return std::nullopt;
}

std::vector<float> source_values(const SafetensorsTensor& t) {
  std::vector<float> v(size_t(t.n_elements()));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t.dtype == DType::F32) {
      std::memcpy(&v[i], t.data + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      v[i] = t.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  return v;
}

// Rotate-half pairs dimension i of a head with i + d/2; the adjacent-pair layout pairs 2i with
// 2i + 1, keeping frequency index i. So row 2i + j of a head in the file holds the source's
// row i + j * d/2.
int64_t adjacent_source_row(int64_t row, int64_t head_dim) {
  const int64_t head = row / head_dim, k = row % head_dim;
  return head * head_dim + k / 2 + (k % 2) * (head_dim / 2);
}

bool is_permuted(const std::string& name, const HParams& hp) {
  return hp.arch != "qwen2" &&
         (name.find(".attn_q.") != std::string::npos || name.find(".attn_k.") != std::string::npos);
}

struct Source {
  std::string gguf;
  std::vector<int64_t> shape;  // row-major
  std::vector<float> values;   // in the row order the GGUF file must have
};

// Every tensor of a fixture, by GGUF name, with the q/k rows of llama-arch models reordered as
// adjacent_source_row says.
std::vector<Source> expected_tensors(const fs::path& dir, const HParams& hp) {
  const auto archive = SafetensorsArchive::open_directory(dir);
  std::vector<Source> out;
  for (const auto& t : archive->tensors()) {
    const auto name = gguf_name(t.name);
    if (!name) continue;
    Source s{*name, t.shape, source_values(t)};
    if (is_permuted(*name, hp)) {
      const int64_t cols = t.shape.size() == 2 ? t.shape[1] : 1;
      const int64_t rows = int64_t(s.values.size()) / cols;
      std::vector<float> p(s.values.size());
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t from = adjacent_source_row(r, hp.head_dim);
        std::copy_n(&s.values[size_t(from * cols)], cols, &p[size_t(r * cols)]);
      }
      s.values = std::move(p);
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<float> gguf_values(const GgufTensorInfo& t) {
  std::vector<float> v(size_t(t.n_elements()));
  dequantize_row(t.type, t.data, v.data(), t.n_elements());
  return v;
}

std::vector<uint16_t> gguf_halves(const GgufTensorInfo& t) {
  std::vector<uint16_t> v(size_t(t.n_elements()));
  std::memcpy(v.data(), t.data, v.size() * 2);
  return v;
}

HParams hf_hparams(const fs::path& dir) {
  return open_hf_source(dir)->hparams();
}

// What the converter must store a tensor as, from the rules its header documents.
DType expected_type(const Source& s, DType requested, int64_t* fallbacks) {
  if (s.shape.size() != 2) return DType::F32;
  DType t = requested;
  if (t == DType::Q4_0 && (s.gguf == "token_embd.weight" || s.gguf == "output.weight")) {
    t = DType::Q8_0;
  }
  if ((t == DType::Q8_0 || t == DType::Q4_0) && s.shape[1] % 32 != 0) {
    ++*fallbacks;
    return DType::F16;
  }
  return t;
}

TEST(Converter, WritesEveryTensorInTheRequestedTypeAndReportsTheCount) {
  test::ScratchDir scratch;
  for (const char* m : kFixtures) {
    const HParams hp = hf_hparams(kModels / m);
    const auto expected = expected_tensors(kModels / m, hp);
    for (const DType type : kTypes) {
      SCOPED_TRACE(::testing::Message() << m << " as " << dtype_name(type));
      const fs::path out = scratch / (std::string(m) + ".gguf");
      const ConvertReport report = convert_hf_to_gguf(kModels / m, out, type);
      const auto gguf = GgufFile::open(out);
      const bool llama3 = std::string(m) == "llama3-rope";
      EXPECT_EQ(report.n_tensors, int64_t(gguf->tensors().size()));
      EXPECT_EQ(report.n_tensors, int64_t(expected.size()) + (llama3 ? 1 : 0));
      EXPECT_EQ(report.bytes, gguf->file_size());
      int64_t fallbacks = 0;
      for (const Source& s : expected) {
        const GgufTensorInfo* t = gguf->find_tensor(s.gguf);
        ASSERT_NE(t, nullptr) << s.gguf;
        EXPECT_EQ(t->type, expected_type(s, type, &fallbacks)) << s.gguf;
        EXPECT_EQ(t->shape, std::vector<int64_t>(s.shape.rbegin(), s.shape.rend())) << s.gguf;
      }
      EXPECT_EQ(report.n_fallback_f16, fallbacks);
      // llama-gqa's feed-forward width (176) is not a multiple of 32: its ffn_down falls back.
      if (std::string(m) == "llama-gqa" && (type == DType::Q8_0 || type == DType::Q4_0)) {
        EXPECT_EQ(fallbacks, hp.n_layer);
      }
      const GgufTensorInfo* freqs = gguf->find_tensor("rope_freqs.weight");
      ASSERT_EQ(freqs != nullptr, llama3);
      if (freqs) {
        EXPECT_EQ(freqs->type, DType::F32);
        EXPECT_EQ(freqs->shape, std::vector<int64_t>{hp.head_dim / 2});
      }
      // The fixtures carry no tokenizer files and no chat template.
      EXPECT_EQ(gguf->find("tokenizer.ggml.model"), nullptr);
      EXPECT_EQ(gguf->find("tokenizer.chat_template"), nullptr);
    }
  }
}

TEST(Converter, F32KeepsEverySourceValueExactly) {
  test::ScratchDir scratch;
  for (const char* m : kFixtures) {
    SCOPED_TRACE(m);
    const fs::path out = scratch / "f32.gguf";
    convert_hf_to_gguf(kModels / m, out, DType::F32);
    const auto gguf = GgufFile::open(out);
    for (const Source& s : expected_tensors(kModels / m, hf_hparams(kModels / m))) {
      const GgufTensorInfo* t = gguf->find_tensor(s.gguf);
      ASSERT_NE(t, nullptr) << s.gguf;
      ASSERT_EQ(t->type, DType::F32);
      const std::vector<float> got = gguf_values(*t);
      ASSERT_EQ(got.size(), s.values.size()) << s.gguf;
      EXPECT_EQ(std::memcmp(got.data(), s.values.data(), got.size() * 4), 0) << s.gguf;
    }
  }
}

TEST(Converter, LlamaQueryAndKeyRowsArePermutedToAdjacentPairs) {
  test::ScratchDir scratch;
  for (const char* m : {"llama-gqa", "llama3-rope", "mistral-mha", "qwen2-bias"}) {
    SCOPED_TRACE(m);
    const HParams hp = hf_hparams(kModels / m);
    const bool llama_arch = hp.arch != "qwen2";
    const fs::path out = scratch / "f32.gguf";
    convert_hf_to_gguf(kModels / m, out, DType::F32);
    const auto gguf = GgufFile::open(out);
    const auto archive = SafetensorsArchive::open_directory(kModels / m);
    int checked = 0;
    for (const auto& src : archive->tensors()) {
      const std::string name = gguf_name(src.name).value_or("");
      if (name.find(".attn_q.") == std::string::npos && name.find(".attn_k.") == std::string::npos)
        continue;
      const int64_t heads = name.find(".attn_q.") != std::string::npos ? hp.n_head : hp.n_head_kv;
      const int64_t cols = src.shape.size() == 2 ? src.shape[1] : 1;
      const int64_t rows = src.shape[0];
      ASSERT_EQ(rows, heads * hp.head_dim) << name;
      const std::vector<float> want = source_values(src);
      const std::vector<float> got = gguf_values(*gguf->find_tensor(name));
      const auto row = [cols](const std::vector<float>& v, int64_t r) {
        return std::vector<float>(v.begin() + r * cols, v.begin() + (r + 1) * cols);
      };
      std::vector<int64_t> perm(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) {
        perm[size_t(r)] = llama_arch ? adjacent_source_row(r, hp.head_dim) : r;
      }
      // A permutation: every source row is used exactly once...
      std::vector<int64_t> sorted = perm;
      std::sort(sorted.begin(), sorted.end());
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(sorted[size_t(r)], r);
      // ...and the file's rows are the source's rows in that order.
      bool moved = false;
      for (int64_t r = 0; r < rows; ++r) {
        EXPECT_EQ(row(got, r), row(want, perm[size_t(r)])) << name << " row " << r;
        moved |= row(got, r) != row(want, r);
      }
      EXPECT_EQ(moved, llama_arch) << name << ": rows moved only for llama-arch models";
      // Undoing it (file row r back to source row perm[r]) reproduces the source.
      std::vector<float> undone(got.size());
      for (int64_t r = 0; r < rows; ++r) {
        std::copy_n(&got[size_t(r * cols)], cols, &undone[size_t(perm[size_t(r)] * cols)]);
      }
      EXPECT_EQ(undone, want) << name;
      ++checked;
    }
    EXPECT_EQ(checked, int(hp.n_layer) * (hp.attn_qkv_bias ? 4 : 2));
  }
}

TEST(Converter, HalfTypesRoundEachValueToNearestEven) {
  test::ScratchDir scratch;
  for (const char* m : {"llama-gqa", "qwen2-bias", "qwen2-bias-bf16"}) {
    const auto expected = expected_tensors(kModels / m, hf_hparams(kModels / m));
    for (const DType type : {DType::F16, DType::BF16}) {
      SCOPED_TRACE(::testing::Message() << m << " as " << dtype_name(type));
      const fs::path out = scratch / "half.gguf";
      convert_hf_to_gguf(kModels / m, out, type);
      const auto gguf = GgufFile::open(out);
      for (const Source& s : expected) {
        const GgufTensorInfo* t = gguf->find_tensor(s.gguf);
        ASSERT_NE(t, nullptr) << s.gguf;
        if (s.shape.size() == 1) {
          EXPECT_EQ(gguf_values(*t), s.values) << s.gguf;
          continue;
        }
        ASSERT_EQ(t->type, type) << s.gguf;
        const std::vector<uint16_t> got = gguf_halves(*t);
        ASSERT_EQ(got.size(), s.values.size());
        size_t bad = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          const float v = s.values[i];
          bad += got[i] != (type == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v));
        }
        EXPECT_EQ(bad, 0u) << s.gguf;
      }
    }
  }
}

// Q8_0 stores d = max|x| / 127 (Q4_0: d = x_maxabs / -8, up to |d| of error at the far end),
// with d rounded to f16; every value must come back within that step of the source.
TEST(Converter, QuantisedWeightsStayWithinOneStepOfTheSource) {
  test::ScratchDir scratch;
  for (const char* m : {"llama-gqa", "qwen2-bias"}) {
    const auto expected = expected_tensors(kModels / m, hf_hparams(kModels / m));
    for (const DType type : {DType::Q8_0, DType::Q4_0}) {
      SCOPED_TRACE(::testing::Message() << m << " as " << dtype_name(type));
      const fs::path out = scratch / "q.gguf";
      convert_hf_to_gguf(kModels / m, out, type);
      const auto gguf = GgufFile::open(out);
      for (const Source& s : expected) {
        const GgufTensorInfo* t = gguf->find_tensor(s.gguf);
        ASSERT_NE(t, nullptr) << s.gguf;
        if (t->type != DType::Q8_0 && t->type != DType::Q4_0) continue;
        // Half a step (Q8_0) or a whole one (Q4_0), plus the f16 rounding of d times max|q|.
        const double step_per_max =
            t->type == DType::Q8_0 ? (0.5 + 127 / 2048.0) / 127 : (1.0 + 8 / 2048.0) / 8;
        const std::vector<float> got = gguf_values(*t);
        for (size_t b = 0; b < got.size(); b += 32) {
          float amax = 0;
          for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(s.values[i]));
          for (size_t i = b; i < b + 32; ++i) {
            ASSERT_LE(std::fabs(got[i] - s.values[i]), amax * step_per_max * (1 + 1e-6) + 1e-12)
                << s.gguf << " element " << i;
          }
        }
      }
    }
  }
}

// Llama 3.1's published rule: wavelengths longer than original_max / low_freq_factor are slowed
// by `factor`, shorter than original_max / high_freq_factor kept, and the band between
// interpolated; the stored value divides the frequency.
std::vector<float> llama3_divisors(const json& rope, int64_t head_dim) {
  const double theta = rope["rope_theta"], factor = rope["factor"];
  const double lo = rope["low_freq_factor"], hi = rope["high_freq_factor"];
  const double orig = rope["original_max_position_embeddings"];
  std::vector<float> out;
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const double freq = std::pow(theta, -2.0 * double(i) / double(head_dim));
    const double wavelen = 2 * std::numbers::pi / freq;
    double scaled = freq;
    if (wavelen > orig / lo) {
      scaled = freq / factor;
    } else if (wavelen >= orig / hi) {
      const double smooth = (orig / wavelen - lo) / (hi - lo);
      scaled = (1 - smooth) * freq / factor + smooth * freq;
    }
    out.push_back(float(freq / scaled));
  }
  return out;
}

TEST(Converter, HyperParametersReadBackEqualTheDirectorys) {
  test::ScratchDir scratch;
  for (const char* m : kFixtures) {
    SCOPED_TRACE(m);
    const fs::path out = scratch / "hp.gguf";
    convert_hf_to_gguf(kModels / m, out, DType::Q8_0);
    const auto hf = load_model(kModels / m);
    const auto gg = load_model(out);
    const HParams &a = hf->hp, &b = gg->hp;
    EXPECT_EQ(b.n_vocab, a.n_vocab);
    EXPECT_EQ(b.n_embd, a.n_embd);
    EXPECT_EQ(b.n_layer, a.n_layer);
    EXPECT_EQ(b.n_head, a.n_head);
    EXPECT_EQ(b.n_head_kv, a.n_head_kv);
    EXPECT_EQ(b.head_dim, a.head_dim);
    EXPECT_EQ(b.n_ff, a.n_ff);
    EXPECT_EQ(b.n_ctx_train, a.n_ctx_train);
    EXPECT_EQ(b.rope_theta, a.rope_theta);
    EXPECT_EQ(b.rms_norm_eps, a.rms_norm_eps);
    EXPECT_EQ(b.tied_embeddings, a.tied_embeddings);
    EXPECT_EQ(b.attn_qkv_bias, a.attn_qkv_bias);
    EXPECT_EQ(b.sliding_window, a.sliding_window);
    // No tokenizer files in the fixtures, yet config.json's BOS and EOS travel.
    EXPECT_EQ(a.bos_token, 1);
    EXPECT_EQ(a.eos_token, 2);
    EXPECT_EQ(b.bos_token, a.bos_token);
    EXPECT_EQ(b.eos_token, a.eos_token);
    EXPECT_EQ(b.rope_layout,
              a.arch == "qwen2" ? RopeLayout::RotateHalf : RopeLayout::AdjacentPairs);
    EXPECT_EQ(b.arch, a.arch == "qwen2" ? "qwen2" : "llama");  // Mistral is written as llama
    EXPECT_EQ(gg->rope_freq_factors, hf->rope_freq_factors);
    const json config = json::parse(test::read_file(kModels / m / "config.json"));
    const json& rope = config["rope_parameters"];
    EXPECT_EQ(a.tied_embeddings, config["tie_word_embeddings"].get<bool>());
    EXPECT_FLOAT_EQ(b.rope_theta, rope["rope_theta"].get<float>());
    if (rope["rope_type"] == "llama3") {
      const std::vector<float> want = llama3_divisors(rope, a.head_dim);
      ASSERT_EQ(gg->rope_freq_factors.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(gg->rope_freq_factors[i], want[i], 1e-5 * want[i]) << "frequency " << i;
      }
      EXPECT_GT(want.back(), 1.5f);  // the fixture does exercise the scaling
    } else {
      EXPECT_TRUE(gg->rope_freq_factors.empty());
    }
  }
}

const std::vector<std::string> kTexts = {
    "Hello world",
    "The café serves crème brûlée.",
    "CJK 我想在苹果工作 and emoji 🦙🚀",
    "  whitespace\t\truns   and\n\n\nnewlines  ",
    "",
    "<|im_start|>user\nhi<|im_end|>\n<think>x",
};

void expect_same_tokenizer(const Tokenizer& hf, const Tokenizer& gg, int32_t n_vocab) {
  EXPECT_EQ(gg.n_vocab(), n_vocab);  // padded up to the embedding rows
  for (int32_t id = hf.n_vocab(); id < gg.n_vocab(); ++id) {
    ASSERT_EQ(gg.vocab().types[size_t(id)], TokenType::unused) << id;
  }
  EXPECT_EQ(gg.bos(), hf.bos());
  EXPECT_EQ(gg.eos(), hf.eos());
  EXPECT_EQ(gg.add_bos_default(), hf.add_bos_default());
  for (const std::string& s : kTexts) {
    for (const bool special : {false, true}) {
      const auto ids = hf.encode(s, hf.add_bos_default(), special);
      EXPECT_EQ(gg.encode(s, gg.add_bos_default(), special), ids) << "'" << s << "' " << special;
      EXPECT_EQ(gg.decode(ids), hf.decode(ids)) << "'" << s << "'";
    }
  }
}

TEST(Converter, BosAndEosWithoutTokenizerFilesFollowTheConfig) {
  test::ScratchDir scratch;
  const fs::path dir = scratch / "hf";
  fs::create_directories(dir);
  fs::copy_file(kModels / "llama-gqa" / "model.safetensors", dir / "model.safetensors");
  json config = json::parse(test::read_file(kModels / "llama-gqa" / "config.json"));
  config.erase("bos_token_id");
  config["eos_token_id"] = {7, 2};  // Llama 3.1 lists several; the first is the main one
  test::write_file(dir / "config.json", config.dump());
  const fs::path out = scratch / "m.gguf";
  convert_hf_to_gguf(dir, out, DType::F32);
  const auto gguf = GgufFile::open(out);
  EXPECT_EQ(gguf->find("tokenizer.ggml.bos_token_id"), nullptr);
  ASSERT_NE(gguf->find("tokenizer.ggml.eos_token_id"), nullptr);
  EXPECT_EQ(gguf->find("tokenizer.ggml.eos_token_id")->as_u64(), 7u);
  EXPECT_EQ(gguf->find("tokenizer.ggml.model"), nullptr);  // still no vocabulary
  const auto m = load_model(out);
  EXPECT_EQ(m->hp.bos_token, -1);
  EXPECT_EQ(m->hp.eos_token, 7);
}

TEST(Converter, SentencePieceTokenizerAndChatTemplateTravel) {
  test::ScratchDir scratch;
  const fs::path dir = test::make_chat_model_dir(scratch / "chat");
  const fs::path out = scratch / "chat.gguf";
  convert_hf_to_gguf(dir, out, DType::Q8_0);
  const auto gguf = GgufFile::open(out);
  const auto hf = Tokenizer::from_hf_dir(dir);
  const auto gg = Tokenizer::from_gguf(*gguf);
  EXPECT_EQ(hf->n_vocab(), 403);
  expect_same_tokenizer(*hf, *gg, 1000);
  EXPECT_EQ(gg->encode("<|im_start|>", false, true), (std::vector<int32_t>{402}));
  const json config = json::parse(test::read_file(dir / "tokenizer_config.json"));
  EXPECT_EQ(gguf->get_string("tokenizer.chat_template"),
            config["chat_template"].get<std::string>());
  EXPECT_EQ(load_model(out)->hp.bos_token, gg->bos());
}

// A small byte-level BPE tokenizer.json (GPT-2 byte mapping, Qwen2 pre-tokenizer regex).
json tiny_byte_level_tokenizer() {
  json vocab = json::object();
  int32_t unprintable = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const char32_t cp = printable ? char32_t(b) : char32_t(0x100 + unprintable++);
    std::string s = cp < 0x80 ? std::string(1, char(cp))
                              : std::string{char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
    vocab[s] = b;
  }
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}};
  json merges_json = json::array();
  for (const auto& [l, r] : merges) {
    vocab[l + r] = int32_t(vocab.size());
    merges_json.push_back({l, r});
  }
  const int32_t n = int32_t(vocab.size());
  json added = json::array();
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    added.push_back({{"id", n + int32_t(added.size())}, {"content", s}, {"special", true}});
  }
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", false}};
  const std::string regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const json split = {{"type", "Split"},
                      {"pattern", {{"Regex", regex}}},
                      {"behavior", "Isolated"},
                      {"invert", false}};
  return {{"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {split, byte_level}}}},
          {"post_processor", nullptr},
          {"decoder", byte_level},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges_json}}}};
}

TEST(Converter, ByteLevelTokenizerAndDefaultChatTemplateTravel) {
  test::ScratchDir scratch;
  const fs::path dir = scratch / "qwen";
  fs::copy(kModels / "qwen2-bias", dir);
  test::write_file(dir / "tokenizer.json", tiny_byte_level_tokenizer().dump());
  const json config = {
      {"bos_token", nullptr},
      {"eos_token", "<|im_end|>"},
      {"add_bos_token", false},
      {"chat_template",
       {{{"name", "default"}, {"template", "{% for m in messages %}{{ m.content }}{% endfor %}"}},
        {{"name", "tool_use"}, {"template", "{{ tools }}"}}}}};
  test::write_file(dir / "tokenizer_config.json", config.dump());
  const fs::path out = scratch / "qwen.gguf";
  convert_hf_to_gguf(dir, out, DType::F16);
  const auto gguf = GgufFile::open(out);
  const auto hf = Tokenizer::from_hf_dir(dir);
  const auto gg = Tokenizer::from_gguf(*gguf);
  EXPECT_EQ(gg->vocab().pre, "qwen2");
  EXPECT_EQ(gg->vocab().merges, hf->vocab().merges);
  expect_same_tokenizer(*hf, *gg, 1000);
  EXPECT_EQ(gguf->get_string("tokenizer.chat_template"),
            config["chat_template"][0]["template"].get<std::string>());
}

bool has_tmp(const fs::path& out) {
  return fs::exists(out.string() + ".tmp");
}

TEST(Converter, ReplacesAnExistingOutputAndReportsFinalProgress) {
  test::ScratchDir scratch;
  const fs::path out = scratch / "model.gguf";
  test::write_file(out, "an old file that is not GGUF");
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  const ConvertReport report =
      convert_hf_to_gguf(kModels / "llama-gqa", out, DType::F16,
                         [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
  EXPECT_FALSE(has_tmp(out));
  const auto gguf = GgufFile::open(out);
  EXPECT_EQ(int64_t(gguf->tensors().size()), report.n_tensors);
  ASSERT_FALSE(calls.empty());
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].second, calls.back().second);
    EXPECT_LE(calls[i].first, calls[i].second);
    if (i > 0) {
      EXPECT_GT(calls[i].first, calls[i - 1].first);
    }
  }
  EXPECT_EQ(calls.back().first, calls.back().second);
  EXPECT_EQ(calls.back().second, gguf->file_size());
  EXPECT_EQ(report.bytes, gguf->file_size());
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one with '" << needles.front() << "'";
  } catch (const Error& e) {
    for (const auto& n : needles) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
    }
  }
}

TEST(Converter, AFailedConversionLeavesTheOldOutputUntouched) {
  test::ScratchDir scratch;
  const fs::path dir = scratch / "broken";
  fs::copy(kModels / "llama-gqa", dir);
  test::write_file(dir / "config.json", "{ \"hidden_size\": 64, ");
  const fs::path out = scratch / "model.gguf";
  const std::string old = "the previous output";
  test::write_file(out, old);
  expect_error([&] { convert_hf_to_gguf(dir, out, DType::F32); },
               {(dir / "config.json").string(), "not valid JSON"});
  EXPECT_EQ(test::read_file(out), old);
  EXPECT_FALSE(has_tmp(out));

  // A failure while the data is being written (here: the caller cancels from the progress
  // callback after the first tensor) removes the partial file too.
  int calls = 0;
  expect_error(
      [&] {
        convert_hf_to_gguf(kModels / "llama-gqa", out, DType::F32, [&](uint64_t, uint64_t) {
          if (++calls == 2) fail("cancelled");
        });
      },
      {"cancelled"});
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(test::read_file(out), old);
  EXPECT_FALSE(has_tmp(out));
}

TEST(Converter, BadInputsAreClearErrors) {
  test::ScratchDir scratch;
  const fs::path out = scratch / "out.gguf";
  const fs::path missing = scratch / "no-such-model";
  expect_error([&] { convert_hf_to_gguf(missing, out, DType::F16); },
               {missing.string(), "config.json"});

  const fs::path no_weights = scratch / "no-weights";
  fs::create_directories(no_weights);
  fs::copy_file(kModels / "llama-gqa" / "config.json", no_weights / "config.json");
  expect_error([&] { convert_hf_to_gguf(no_weights, out, DType::F16); },
               {no_weights.string(), "no safetensors"});

  // A tokenizer with more tokens than the model has embedding rows.
  const fs::path big = scratch / "big-vocab";
  test::make_chat_model_dir(big);
  json config = json::parse(test::read_file(big / "config.json"));
  json tok = json::parse(test::read_file(big / "tokenizer_config.json"));
  tok["added_tokens_decoder"]["1200"] = {{"content", "<|extra|>"}, {"special", true}};
  test::write_file(big / "tokenizer_config.json", tok.dump());
  EXPECT_EQ(config["vocab_size"], 1000);
  expect_error([&] { convert_hf_to_gguf(big, out, DType::F16); },
               {big.string(), "1201 tokens", "1000 embedding rows"});

  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_tmp(out));
}

}  // namespace
}  // namespace ep
