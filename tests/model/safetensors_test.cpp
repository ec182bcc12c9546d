#include "model/safetensors.h"

#include "core/error.h"
#include "core/half.h"
#include "model/hf_config.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>

namespace ep {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

fs::path model_dir(const std::string& name) {
  return test::fixtures_dir() / "models" / name;
}

// A safetensors file from a header (JSON text) and a data buffer.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string with_length(uint64_t n, const std::string& rest) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + rest;
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::unique_ptr<SafetensorsArchive> parse(const std::string& file) {
  return SafetensorsArchive::parse(bytes_of(file), "mem.safetensors");
}

// Runs `f`, which must throw ep::Error with a one-line message containing every one of `parts`.
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    for (const auto& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << what << "\n  lacks: " << p;
    return;
  }
  ADD_FAILURE() << "no ep::Error thrown";
}

void expect_parse_error(const std::string& file, std::initializer_list<std::string> parts) {
  std::vector<std::string> all{"mem.safetensors: "};
  all.insert(all.end(), parts.begin(), parts.end());
  try {
    parse(file);
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_EQ(what.rfind("mem.safetensors: ", 0), 0u) << what;
    for (const auto& p : all)
      EXPECT_NE(what.find(p), std::string::npos) << what << "\n  lacks: " << p;
    return;
  }
  ADD_FAILURE() << "no ep::Error thrown for header " << file.substr(8, 200);
}

float f32_at(const SafetensorsTensor& t, size_t i) {
  float v;
  std::memcpy(&v, t.data + 4 * i, 4);
  return v;
}
uint16_t u16_at(const SafetensorsTensor& t, size_t i) {
  uint16_t v;
  std::memcpy(&v, t.data + 2 * i, 2);
  return v;
}

// A small valid file: a [2, 3] f32 tensor, a [4] bf16 tensor, a scalar f16, an empty tensor.
std::string small_valid_file() {
  std::string data;
  for (int i = 0; i < 6; ++i) {
    const float v = float(i) * 0.5f - 1.0f;
    data.append(reinterpret_cast<const char*>(&v), 4);
  }
  for (int i = 0; i < 4; ++i) {
    const uint16_t v = f32_to_bf16(float(i) + 0.25f);
    data.append(reinterpret_cast<const char*>(&v), 2);
  }
  const uint16_t h = f32_to_f16(3.0f);
  data.append(reinterpret_cast<const char*>(&h), 2);
  const std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},)"
      R"("c":{"dtype":"F16","shape":[],"data_offsets":[32,34]},)"
      R"("empty":{"dtype":"F32","shape":[0,7],"data_offsets":[34,34]}}      )";
  return make_file(header, data);
}

// One-tensor file with the given entry for tensor "w" and `data_size` bytes of data.
std::string one_tensor(const std::string& entry, size_t data_size) {
  return make_file(R"({"w":)" + entry + "}", std::string(data_size, '\x01'));
}

TEST(ParserSafetensors, SmallValidFile) {
  const std::string file = small_valid_file();
  const auto st = parse(file);
  ASSERT_EQ(st->tensors().size(), 4u);
  EXPECT_EQ(st->tensors()[0].name, "a");  // file order
  EXPECT_EQ(st->tensors()[3].name, "empty");

  const SafetensorsTensor* a = st->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::F32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->n_bytes, 24u);
  EXPECT_EQ(a->n_elements(), 6);
  EXPECT_EQ(a->file, "mem.safetensors");
  EXPECT_EQ(a->data, bytes_of(file).data() + 8 + (file.size() - 8 - 34));
  EXPECT_EQ(f32_at(*a, 0), -1.0f);
  EXPECT_EQ(f32_at(*a, 5), 1.5f);

  const SafetensorsTensor* b = st->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::BF16);
  EXPECT_EQ(bf16_to_f32(u16_at(*b, 3)), 3.25f);

  const SafetensorsTensor* c = st->find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->dtype, DType::F16);
  EXPECT_TRUE(c->shape.empty());
  EXPECT_EQ(c->n_elements(), 1);
  EXPECT_EQ(f16_to_f32(u16_at(*c, 0)), 3.0f);

  const SafetensorsTensor* e = st->find("empty");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->n_bytes, 0u);
  EXPECT_EQ(e->n_elements(), 0);

  EXPECT_EQ(st->find("missing"), nullptr);
  EXPECT_EQ(st->find(""), nullptr);
}

TEST(ParserSafetensors, EmptyHeaderIsValid) {
  EXPECT_TRUE(parse(make_file("{}", ""))->tensors().empty());
  EXPECT_TRUE(parse(make_file(R"(  {"__metadata__": null}  )", ""))->tensors().empty());
}

// Every fixture's tensors have the shapes its config.json implies.
TEST(ParserSafetensors, FixtureShapesMatchConfigs) {
  const std::map<std::string, size_t> expected_counts = {{"llama-gqa", 30},
                                                         {"llama3-rope", 29},
                                                         {"mistral-mha", 21},
                                                         {"qwen2-bias", 38},
                                                         {"qwen2-bias-bf16", 38}};
  for (const auto& [name, count] : expected_counts) {
    SCOPED_TRACE(name);
    const HParams hp = load_hf_config(model_dir(name));
    const auto st = SafetensorsArchive::open_directory(model_dir(name));
    ASSERT_EQ(st->tensors().size(), count);
    const DType want = name == "qwen2-bias-bf16" ? DType::BF16 : DType::F32;
    std::set<std::string> names;
    for (const auto& t : st->tensors()) {
      EXPECT_EQ(t.dtype, want) << t.name;
      EXPECT_EQ(t.n_bytes, uint64_t(t.n_elements()) * (want == DType::F32 ? 4 : 2)) << t.name;
      names.insert(t.name);
    }
    EXPECT_EQ(names.size(), count);

    auto shape_of = [&](const std::string& t) {
      const SafetensorsTensor* p = st->find(t);
      EXPECT_NE(p, nullptr) << t;
      return p == nullptr ? std::vector<int64_t>{} : p->shape;
    };
    using S = std::vector<int64_t>;
    EXPECT_EQ(shape_of("model.embed_tokens.weight"), (S{hp.n_vocab, hp.n_embd}));
    EXPECT_EQ(shape_of("model.norm.weight"), (S{hp.n_embd}));
    EXPECT_EQ(st->find("lm_head.weight") != nullptr, !hp.tied_embeddings);
    if (!hp.tied_embeddings) {
      EXPECT_EQ(shape_of("lm_head.weight"), (S{hp.n_vocab, hp.n_embd}));
    }
    for (int64_t l = 0; l < hp.n_layer; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      EXPECT_EQ(shape_of(p + "input_layernorm.weight"), (S{hp.n_embd}));
      EXPECT_EQ(shape_of(p + "post_attention_layernorm.weight"), (S{hp.n_embd}));
      EXPECT_EQ(shape_of(p + "self_attn.q_proj.weight"), (S{hp.n_head * hp.head_dim, hp.n_embd}));
      EXPECT_EQ(shape_of(p + "self_attn.k_proj.weight"),
                (S{hp.n_head_kv * hp.head_dim, hp.n_embd}));
      EXPECT_EQ(shape_of(p + "self_attn.v_proj.weight"),
                (S{hp.n_head_kv * hp.head_dim, hp.n_embd}));
      EXPECT_EQ(shape_of(p + "self_attn.o_proj.weight"), (S{hp.n_embd, hp.n_head * hp.head_dim}));
      EXPECT_EQ(shape_of(p + "mlp.gate_proj.weight"), (S{hp.n_ff, hp.n_embd}));
      EXPECT_EQ(shape_of(p + "mlp.up_proj.weight"), (S{hp.n_ff, hp.n_embd}));
      EXPECT_EQ(shape_of(p + "mlp.down_proj.weight"), (S{hp.n_embd, hp.n_ff}));
      EXPECT_EQ(st->find(p + "self_attn.q_proj.bias") != nullptr, hp.attn_qkv_bias);
      if (hp.attn_qkv_bias) {
        EXPECT_EQ(shape_of(p + "self_attn.q_proj.bias"), (S{hp.n_head * hp.head_dim}));
        EXPECT_EQ(shape_of(p + "self_attn.k_proj.bias"), (S{hp.n_head_kv * hp.head_dim}));
        EXPECT_EQ(shape_of(p + "self_attn.v_proj.bias"), (S{hp.n_head_kv * hp.head_dim}));
      }
    }
  }
}

TEST(ParserSafetensors, FixtureF32ValuesAreFinite) {
  const auto st = SafetensorsArchive::open_file(model_dir("llama-gqa") / "model.safetensors");
  ASSERT_EQ(st->tensors().size(), 30u);
  for (const auto& t : st->tensors()) {
    ASSERT_EQ(t.file, (model_dir("llama-gqa") / "model.safetensors").string());
    bool any_nonzero = false;
    for (int64_t i = 0; i < t.n_elements(); ++i) {
      const float v = f32_at(t, size_t(i));
      ASSERT_TRUE(std::isfinite(v)) << t.name << "[" << i << "]";
      any_nonzero = any_nonzero || v != 0.0f;
    }
    EXPECT_TRUE(any_nonzero) << t.name;
  }
  // Layer norms are initialised to 1.
  const SafetensorsTensor* norm = st->find("model.norm.weight");
  ASSERT_NE(norm, nullptr);
  const float n0 = f32_at(*norm, 0);
  EXPECT_TRUE(std::isfinite(n0));
  EXPECT_GT(n0, 0.0f);
}

// qwen2-bias-bf16 was saved from qwen2-bias: every value is the f32 one rounded to bf16.
TEST(ParserSafetensors, ShardedBf16MatchesF32Rounded) {
  const auto f32 = SafetensorsArchive::open_directory(model_dir("qwen2-bias"));
  const auto bf16 = SafetensorsArchive::open_directory(model_dir("qwen2-bias-bf16"));
  ASSERT_EQ(f32->tensors().size(), bf16->tensors().size());
  std::set<std::string> shard_files;
  for (const auto& t : bf16->tensors()) {
    SCOPED_TRACE(t.name);
    shard_files.insert(fs::path(t.file).filename().string());
    const SafetensorsTensor* ref = f32->find(t.name);
    ASSERT_NE(ref, nullptr);
    ASSERT_EQ(t.dtype, DType::BF16);
    ASSERT_EQ(t.shape, ref->shape);
    ASSERT_EQ(t.n_bytes * 2, ref->n_bytes);
    for (int64_t i = 0; i < t.n_elements(); ++i) {
      ASSERT_EQ(u16_at(t, size_t(i)), f32_to_bf16(f32_at(*ref, size_t(i)))) << "element " << i;
    }
  }
  EXPECT_EQ(shard_files, (std::set<std::string>{"model-00001-of-00002.safetensors",
                                                "model-00002-of-00002.safetensors"}));
  // The index places the embedding in the first shard and the final norm in the second.
  EXPECT_EQ(fs::path(bf16->find("model.embed_tokens.weight")->file).filename(),
            "model-00001-of-00002.safetensors");
  EXPECT_EQ(fs::path(bf16->find("model.norm.weight")->file).filename(),
            "model-00002-of-00002.safetensors");
}

TEST(ParserSafetensors, OpenFileMatchesOpenDirectory) {
  const auto a = SafetensorsArchive::open_directory(model_dir("mistral-mha"));
  const auto b = SafetensorsArchive::open_file(model_dir("mistral-mha") / "model.safetensors");
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (size_t i = 0; i < a->tensors().size(); ++i) {
    const auto& x = a->tensors()[i];
    const auto& y = b->tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.shape, y.shape);
    ASSERT_EQ(x.n_bytes, y.n_bytes);
    EXPECT_EQ(std::memcmp(x.data, y.data, x.n_bytes), 0) << x.name;
  }
}

TEST(ParserSafetensors, DirectoryWithoutIndexReadsAllFiles) {
  ScratchDir dir;
  const fs::path src = model_dir("qwen2-bias-bf16");
  fs::copy_file(src / "model-00001-of-00002.safetensors", dir / "first.safetensors");
  fs::copy_file(src / "model-00002-of-00002.safetensors", dir / "second.safetensors");
  test::write_file(dir / "notes.txt", "not weights");
  const auto st = SafetensorsArchive::open_directory(dir.path());
  EXPECT_EQ(st->tensors().size(), 38u);
  EXPECT_EQ(fs::path(st->tensors().front().file).filename(), "first.safetensors");
  EXPECT_EQ(fs::path(st->tensors().back().file).filename(), "second.safetensors");
}

TEST(ParserSafetensors, ModelSafetensorsPreferredOverOtherFiles) {
  ScratchDir dir;
  fs::copy_file(model_dir("mistral-mha") / "model.safetensors", dir / "model.safetensors");
  test::write_file(dir / "zzz.safetensors", "garbage that would fail to parse");
  EXPECT_EQ(SafetensorsArchive::open_directory(dir.path())->tensors().size(), 21u);
}

TEST(ParserSafetensors, TruncatedAtEveryLength) {
  const std::string file = small_valid_file();
  ASSERT_NO_THROW(parse(file));
  for (size_t n = 0; n < file.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_THROW(parse(file.substr(0, n)), Error);
  }
}

TEST(ParserSafetensors, TruncatedFixtureShard) {
  const std::string file =
      test::read_file(model_dir("qwen2-bias-bf16") / "model-00001-of-00002.safetensors");
  ASSERT_NO_THROW(parse(file));
  for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(8), size_t(9), size_t(100), size_t(1055),
                   size_t(1056), size_t(1057), file.size() / 2, file.size() - 1}) {
    SCOPED_TRACE(n);
    EXPECT_THROW(parse(file.substr(0, n)), Error);
  }
  ScratchDir dir;
  test::write_file(dir / "cut.safetensors", file.substr(0, file.size() - 2));
  expect_error([&] { SafetensorsArchive::open_file(dir / "cut.safetensors"); },
               {(dir / "cut.safetensors").string() + ": ", "model.layers.0.self_attn.v_proj.weight",
                "outside the data buffer"});
  test::write_file(dir / "empty.safetensors", "");
  expect_error([&] { SafetensorsArchive::open_file(dir / "empty.safetensors"); },
               {(dir / "empty.safetensors").string() + ": ", "too small"});
}

TEST(ParserSafetensors, BadHeaderLength) {
  expect_parse_error(with_length(1000, "{}"), {"header length 1000", "past the end"});
  expect_parse_error(with_length(~uint64_t(0), "{}"), {"header length"});
  expect_parse_error(with_length(uint64_t(1) << 63, std::string(64, ' ')), {"header length"});
  expect_parse_error(with_length(0, ""), {"not valid JSON"});
  expect_parse_error(std::string("\x02\0\0\0", 4), {"too small"});
}

TEST(ParserSafetensors, BadJson) {
  expect_parse_error(make_file("{", ""), {"not valid JSON"});
  expect_parse_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})", "abcd"),
                     {"not valid JSON"});
  expect_parse_error(make_file("[1,2]", ""), {"array, not an object"});
  expect_parse_error(make_file("42", ""), {"not an object"});
  expect_parse_error(make_file(std::string("{\"\xff\xfe\":1}"), ""), {"not valid JSON"});
  expect_parse_error(make_file(std::string("{}\0\0", 4), ""), {"not valid JSON"});
  expect_parse_error(make_file(R"({"w": 7})", ""), {"tensor 'w'", "not an object"});
  expect_parse_error(make_file(R"({"__metadata__": [1]})", ""), {"__metadata__"});
  expect_parse_error(make_file(std::string(5000, '[') + std::string(5000, ']'), ""), {"deeper"});
  expect_parse_error(make_file(R"({"__metadata__":{"a":{"b":{"c":1}}}})", ""), {"deeper"});
}

TEST(ParserSafetensors, MissingOrMistypedFields) {
  expect_parse_error(one_tensor(R"({"shape":[1],"data_offsets":[0,4]})", 4), {"'w'", "'dtype'"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","data_offsets":[0,4]})", 4), {"'w'", "'shape'"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[1]})", 4), {"'w'", "'data_offsets'"});
  expect_parse_error(one_tensor(R"({"dtype":1,"shape":[1],"data_offsets":[0,4]})", 4),
                     {"'w'", "'dtype'", "not a string"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":4,"data_offsets":[0,4]})", 4),
                     {"'w'", "'shape'"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})", 4),
                     {"'w'", "data_offsets"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", 8),
                     {"'w'", "data_offsets"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":{"a":0}})", 4),
                     {"'w'", "data_offsets"});
}

TEST(ParserSafetensors, UnsupportedDtypeNamesTensorFileAndDtype) {
  for (const std::string dtype : {"F64", "I64", "F8_E4M3", "I8", "BOOL", "f32", ""}) {
    SCOPED_TRACE(dtype);
    expect_parse_error(
        one_tensor(R"({"dtype":")" + dtype + R"(","shape":[1],"data_offsets":[0,8]})", 8),
        {"tensor 'w'", "dtype " + dtype, "not supported", "F32, F16, BF16"});
  }
  ScratchDir dir;
  test::write_file(
      dir / "f64.safetensors",
      make_file(R"({"model.x.weight":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})",
                std::string(16, '\0')));
  expect_error([&] { SafetensorsArchive::open_directory(dir.path()); },
               {(dir / "f64.safetensors").string() + ": ", "'model.x.weight'", "F64"});
}

TEST(ParserSafetensors, OffsetsOutOfRange) {
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})", 3),
                     {"'w'", "outside the data buffer"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", 8),
                     {"'w'", "outside"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", 8),
                     {"'w'", "non-negative"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0.0,4.0]})", 8),
                     {"'w'", "non-negative"});
  expect_parse_error(
      one_tensor(
          R"({"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]})",
          8),
      {"'w'"});
  expect_parse_error(
      one_tensor(
          R"({"dtype":"F32","shape":[1],"data_offsets":[9223372036854775804,9223372036854775807]})",
          8),
      {"'w'", "outside"});
  expect_parse_error(
      one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999999]})", 8),
      {"'w'"});
}

TEST(ParserSafetensors, ShapeSizeMismatch) {
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})", 24),
                     {"'w'", "needs 24 bytes", "hold 20"});
  expect_parse_error(one_tensor(R"({"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]})", 24),
                     {"'w'", "needs 12 bytes"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[0],"data_offsets":[0,4]})", 4),
                     {"'w'", "needs 0 bytes"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", 4),
                     {"'w'", "non-negative integer"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", 4),
                     {"'w'", "non-negative integer"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":["1"],"data_offsets":[0,4]})", 4),
                     {"'w'", "non-negative integer"});
  expect_parse_error(one_tensor(R"({"dtype":"F32","shape":[[1]],"data_offsets":[0,4]})", 4),
                     {"deeper"});
}

TEST(ParserSafetensors, OverflowingShapes) {
  // 2^62 * 4 bytes wraps to 0 in 64 bits; 2^32 * 2^32 wraps to 0 too.
  for (const std::string shape :
       {"[4611686018427387904]", "[4294967296,4294967296]", "[4294967296,4294967296,0]",
        "[9223372036854775807,2]", "[18446744073709551615]", "[3037000500,3037000500]",
        "[2305843009213693952]"}) {
    SCOPED_TRACE(shape);
    expect_parse_error(
        one_tensor(R"({"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]})", 0), {"'w'"});
  }
}

TEST(ParserSafetensors, DuplicateNames) {
  expect_parse_error(make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                               R"( "w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                               std::string(8, '\0')),
                     {"tensor 'w'", "twice"});
  // The same tensor in two files of one directory.
  ScratchDir dir;
  const fs::path src = model_dir("qwen2-bias-bf16") / "model-00001-of-00002.safetensors";
  fs::copy_file(src, dir / "a.safetensors");
  fs::copy_file(src, dir / "b.safetensors");
  expect_error([&] { SafetensorsArchive::open_directory(dir.path()); },
               {(dir / "b.safetensors").string() + ": ", "model.embed_tokens.weight",
                "also in " + (dir / "a.safetensors").string()});
}

TEST(ParserSafetensors, ControlCharactersInNamesStayOnOneLine) {
  const std::string file =
      make_file("{\"bad\\nname\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x");
  expect_parse_error(file, {"bad\\x0aname"});
}

// Copies a fixture directory into a scratch directory, so its index can be altered.
void copy_model(const std::string& name, const fs::path& to) {
  for (const auto& e : fs::directory_iterator(model_dir(name))) {
    if (e.is_regular_file()) fs::copy_file(e.path(), to / e.path().filename());
  }
}

nlohmann::json read_json(const fs::path& p) {
  return nlohmann::json::parse(test::read_file(p));
}
void write_json(const fs::path& p, const nlohmann::json& j) {
  test::write_file(p, j.dump(2));
}

TEST(ParserSafetensors, IndexMissingShard) {
  ScratchDir dir;
  copy_model("qwen2-bias-bf16", dir.path());
  fs::remove(dir / "model-00002-of-00002.safetensors");
  expect_error([&] { SafetensorsArchive::open_directory(dir.path()); },
               {(dir / "model.safetensors.index.json").string() + ": ",
                "model-00002-of-00002.safetensors", "does not exist"});
}

TEST(ParserSafetensors, IndexNamesMissingTensor) {
  ScratchDir dir;
  copy_model("qwen2-bias-bf16", dir.path());
  const fs::path index = dir / "model.safetensors.index.json";
  auto j = read_json(index);
  j["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors";
  write_json(index, j);
  expect_error([&] { SafetensorsArchive::open_directory(dir.path()); },
               {index.string() + ": ", "'model.extra.weight'", "model-00001-of-00002.safetensors"});
  // A tensor placed in the wrong shard.
  j = read_json(model_dir("qwen2-bias-bf16") / "model.safetensors.index.json");
  j["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
  write_json(index, j);
  expect_error([&] { SafetensorsArchive::open_directory(dir.path()); },
               {index.string() + ": ", "'model.norm.weight'"});
}

TEST(ParserSafetensors, IndexPathEscape) {
  ScratchDir root;
  fs::create_directory(root / "model");
  const fs::path dir = root / "model";
  copy_model("qwen2-bias-bf16", dir);
  // A valid shard one level up: it must still be refused.
  fs::copy_file(dir / "model-00002-of-00002.safetensors", root / "outside.safetensors");
  const fs::path index = dir / "model.safetensors.index.json";
  const auto original = read_json(index);
  for (const std::string& bad : std::initializer_list<std::string>{
           "../outside.safetensors", "/etc/passwd", "sub/../../outside.safetensors", "", "..",
           std::string("a\nb.safetensors")}) {
    SCOPED_TRACE(bad);
    auto j = original;
    j["weight_map"]["model.norm.weight"] = bad;
    write_json(index, j);
    expect_error([&] { SafetensorsArchive::open_directory(dir); },
                 {index.string() + ": ", "not a file inside the model directory"});
  }
}

TEST(ParserSafetensors, BadIndexOrDirectory) {
  ScratchDir dir;
  copy_model("qwen2-bias-bf16", dir.path());
  const fs::path index = dir / "model.safetensors.index.json";
  test::write_file(index, "{\"weight_map\": ");
  expect_error([&] { SafetensorsArchive::open_directory(dir.path()); },
               {index.string() + ": ", "not valid JSON"});
  test::write_file(index, R"({"metadata": {}})");
  expect_error([&] { SafetensorsArchive::open_directory(dir.path()); },
               {index.string() + ": ", "weight_map"});
  test::write_file(index, R"({"weight_map": {"model.norm.weight": 3}})");
  expect_error([&] { SafetensorsArchive::open_directory(dir.path()); },
               {index.string() + ": ", "'model.norm.weight'"});
  test::write_file(index, R"({"weight_map": {}})");
  expect_error([&] { SafetensorsArchive::open_directory(dir.path()); },
               {index.string() + ": ", "empty"});

  ScratchDir empty;
  expect_error([&] { SafetensorsArchive::open_directory(empty.path()); },
               {empty.path().string() + ": ", "no safetensors"});
  expect_error([&] { SafetensorsArchive::open_directory(empty / "nope"); },
               {(empty / "nope").string() + ": "});
  expect_error([&] { SafetensorsArchive::open_file(empty / "nope.safetensors"); },
               {(empty / "nope.safetensors").string() + ": "});
}

// Flipping bytes of a valid header gives either a valid archive or an ep::Error, never a crash,
// and every tensor stays inside the buffer.
TEST(ParserSafetensors, ByteFlipsNeverEscapeTheBuffer) {
  const std::string file = small_valid_file();
  const uint64_t header_end = 8 + (uint64_t(uint8_t(file[0])) | uint64_t(uint8_t(file[1])) << 8);
  for (size_t pos = 0; pos < header_end; ++pos) {
    for (const char c : {'\0', '9', '"', '{', ']', '-', 'e'}) {
      std::string copy = file;
      copy[pos] = c;
      try {
        const auto st = parse(copy);
        const auto* begin = bytes_of(copy).data();
        for (const auto& t : st->tensors()) {
          ASSERT_GE(t.data, begin);
          ASSERT_LE(t.data + t.n_bytes, begin + copy.size());
        }
      } catch (const Error&) {
      }
    }
  }
}

}  // namespace
}  // namespace ep
