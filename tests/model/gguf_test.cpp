// GGUF reader and writer: every metadata type, v1/v2/v3 headers, alignment, and corrupt files.
#include "model/gguf.h"
#include "core/error.h"
#include "core/quant.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace ep {
namespace {

// Builds GGUF bytes by hand, independently of GgufWriter, so the reader is tested against the
// spec rather than against our own writer.
class RawGguf {
 public:
  explicit RawGguf(uint32_t version) : v1_(version == 1) {
    put<uint32_t>(0x46554747);
    put<uint32_t>(version);
  }
  template <typename T>
  void put(T v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void count(uint64_t n) { v1_ ? put<uint32_t>(uint32_t(n)) : put<uint64_t>(n); }
  void str(const std::string& s) {
    count(s.size());
    bytes_ += s;
  }
  void pad_to(size_t alignment) {
    bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment, '\0');
  }
  std::string& bytes() { return bytes_; }

 private:
  bool v1_;
  std::string bytes_;
};

std::span<const uint8_t> span_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A file with one metadata value of each type, a nested array and two tensors.
std::string sample_file(uint32_t version, uint32_t alignment = 32) {
  RawGguf g(version);
  g.count(2);   // tensors
  g.count(16);  // metadata
  const auto kv = [&](const std::string& key, GgufType t) {
    g.str(key);
    g.put<uint32_t>(uint32_t(t));
  };
  kv("u8", GgufType::UINT8), g.put<uint8_t>(200);
  kv("i8", GgufType::INT8), g.put<int8_t>(-100);
  kv("u16", GgufType::UINT16), g.put<uint16_t>(60000);
  kv("i16", GgufType::INT16), g.put<int16_t>(-30000);
  kv("u32", GgufType::UINT32), g.put<uint32_t>(4000000000u);
  kv("i32", GgufType::INT32), g.put<int32_t>(-2000000000);
  kv("f32", GgufType::FLOAT32), g.put<float>(1.5f);
  kv("bool", GgufType::BOOL), g.put<uint8_t>(1);
  kv("string", GgufType::STRING), g.str("héllo");
  kv("u64", GgufType::UINT64), g.put<uint64_t>(18000000000000000000ull);
  kv("i64", GgufType::INT64), g.put<int64_t>(-9000000000000000000ll);
  kv("f64", GgufType::FLOAT64), g.put<double>(-2.25);
  kv("general.alignment", GgufType::UINT32), g.put<uint32_t>(alignment);
  kv("strings", GgufType::ARRAY), g.put<uint32_t>(uint32_t(GgufType::STRING)), g.count(2),
      g.str("a"), g.str("bc");
  kv("nested", GgufType::ARRAY), g.put<uint32_t>(uint32_t(GgufType::ARRAY)), g.count(2);
  for (int i = 0; i < 2; ++i) {
    g.put<uint32_t>(uint32_t(GgufType::INT16)), g.count(uint64_t(i + 1));
    for (int j = 0; j <= i; ++j) g.put<int16_t>(int16_t(10 * i + j));
  }
  kv("empty", GgufType::ARRAY), g.put<uint32_t>(uint32_t(GgufType::FLOAT32)), g.count(0);
  // Tensor infos: "a" f32 [4, 2], "b" q8_0 [32].
  g.str("a"), g.put<uint32_t>(2), g.count(4), g.count(2), g.put<uint32_t>(0), g.put<uint64_t>(0);
  g.str("b"), g.put<uint32_t>(1), g.count(32), g.put<uint32_t>(8), g.put<uint64_t>(alignment);
  g.pad_to(alignment);
  for (int i = 0; i < 8; ++i) g.put<float>(float(i));
  g.pad_to(alignment);
  BlockQ8_0 block{};
  block.d = 0x3c00;  // 1.0 in f16
  for (int i = 0; i < 32; ++i) block.qs[i] = int8_t(i - 16);
  g.put(block);
  return g.bytes();
}

TEST(ParserGguf, ReadsEveryMetadataTypeInAllVersions) {
  for (uint32_t version : {1u, 2u, 3u}) {
    SCOPED_TRACE(version);
    const std::string bytes = sample_file(version);
    const auto f = GgufFile::parse(span_of(bytes), "sample.gguf");
    EXPECT_EQ(f->version(), version);
    EXPECT_EQ(f->get("u8").as_u64(), 200u);
    EXPECT_EQ(f->get("i8").as_i64(), -100);
    EXPECT_EQ(f->get("u16").as_u64(), 60000u);
    EXPECT_EQ(f->get("i16").as_i64(), -30000);
    EXPECT_EQ(f->get("u32").as_u64(), 4000000000u);
    EXPECT_EQ(f->get("i32").as_i64(), -2000000000);
    EXPECT_EQ(f->get("f32").as_f64(), 1.5);
    EXPECT_TRUE(f->get("bool").as_bool());
    EXPECT_EQ(f->get("string").as_string(), "héllo");
    EXPECT_EQ(f->get("u64").as_u64(), 18000000000000000000ull);
    EXPECT_EQ(f->get("i64").as_i64(), -9000000000000000000ll);
    EXPECT_EQ(f->get("f64").as_f64(), -2.25);
    EXPECT_EQ(f->get("strings").as_array().at(1).as_string(), "bc");
    const auto& nested = f->get("nested").as_array();
    ASSERT_EQ(nested.size(), 2u);
    EXPECT_EQ(nested[1].array_type(), GgufType::INT16);
    EXPECT_EQ(nested[1].as_array().at(1).as_i64(), 11);
    EXPECT_TRUE(f->get("empty").as_array().empty());
    EXPECT_THROW(f->get("string").as_u64(), Error);
    EXPECT_THROW(f->get("i8").as_u64(), Error);  // negative
    EXPECT_THROW(f->get("missing"), Error);

    ASSERT_EQ(f->tensors().size(), 2u);
    const GgufTensorInfo* a = f->find_tensor("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{4, 2}));
    EXPECT_EQ(a->n_bytes, 32u);
    float values[8];
    std::memcpy(values, a->data, sizeof values);
    EXPECT_EQ(values[7], 7.0f);
    const GgufTensorInfo* b = f->find_tensor("b");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->type, DType::Q8_0);
    float deq[32];
    dequantize_row(DType::Q8_0, b->data, deq, 32);
    EXPECT_EQ(deq[0], -16.0f);
    EXPECT_EQ(deq[31], 15.0f);
  }
}

TEST(ParserGguf, HonoursGeneralAlignment) {
  const std::string bytes = sample_file(3, 64);
  const auto f = GgufFile::parse(span_of(bytes), "aligned.gguf");
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ((f->find_tensor("b")->data - f->find_tensor("a")->data), 64);
}

TEST(ParserGguf, EveryTruncationIsAnErrorNotACrash) {
  const std::string bytes = sample_file(3);
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string cut = bytes.substr(0, n);
    EXPECT_THROW(GgufFile::parse(span_of(cut), "cut.gguf"), Error) << "length " << n;
  }
}

TEST(ParserGguf, RandomByteFlipsNeverCrash) {
  const std::string bytes = sample_file(3);
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string b = bytes;
    for (int k = 0; k < 3; ++k) b[rng() % b.size()] = char(rng());
    try {
      const auto f = GgufFile::parse(span_of(b), "flipped.gguf");
      for (const auto& t : f->tensors()) {
        ASSERT_LE(t.data + t.n_bytes, reinterpret_cast<const uint8_t*>(b.data()) + b.size());
      }
    } catch (const Error&) {
    }
  }
}

TEST(ParserGguf, ErrorsNameTheProblem) {
  const auto message = [](const std::string& bytes) {
    try {
      GgufFile::parse(span_of(bytes), "bad.gguf");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("GGUX").find("bad magic"), std::string::npos);
  {
    RawGguf g(4);
    EXPECT_NE(message(g.bytes()).find("unsupported GGUF version 4"), std::string::npos);
  }
  {
    RawGguf g(3);
    g.count(1), g.count(0);
    g.str("w"), g.put<uint32_t>(1), g.count(256), g.put<uint32_t>(16 /* IQ2_XXS */),
        g.put<uint64_t>(0);
    g.pad_to(32);
    g.bytes().append(200, '\0');
    const std::string m = message(g.bytes());
    EXPECT_NE(m.find("IQ2_XXS"), std::string::npos) << m;
    EXPECT_NE(m.find("'w'"), std::string::npos) << m;
  }
  {
    RawGguf g(3);
    g.count(0), g.count(1);
    g.str("arr"), g.put<uint32_t>(uint32_t(GgufType::ARRAY)), g.put<uint32_t>(4),
        g.count(1ull << 60);
    EXPECT_NE(message(g.bytes()).find("larger than the file"), std::string::npos);
  }
  {
    RawGguf g(3);
    g.count(1), g.count(0);
    g.str("w"), g.put<uint32_t>(1), g.count(64), g.put<uint32_t>(0), g.put<uint64_t>(0);
    g.pad_to(32);
    g.bytes().append(100, '\0');  // 256 bytes needed
    EXPECT_NE(message(g.bytes()).find("truncated"), std::string::npos);
  }
  {
    RawGguf g(3);
    g.count(1), g.count(0);
    g.str("w"), g.put<uint32_t>(1), g.count(33), g.put<uint32_t>(8), g.put<uint64_t>(0);
    EXPECT_NE(message(g.bytes()).find("not a multiple"), std::string::npos);
  }
}

TEST(ParserGguf, WriterRoundTrip) {
  test::ScratchDir dir;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("x.list", GgufValue::f32_array({1.0f, 2.5f}));
  w.set("x.nested", GgufValue::array(GgufType::ARRAY,
                                     {GgufValue::i32_array({1, 2}), GgufValue::i32_array({3})}));
  w.set("x.flag", GgufValue::boolean(false));
  w.set("x.flag", GgufValue::boolean(true));  // replaces
  std::vector<float> data(64);
  for (size_t i = 0; i < data.size(); ++i) data[i] = float(i) * 0.25f - 3.0f;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    w.add_tensor(std::string("t.") + std::string(dtype_name(t)), t, {32, 2},
                 [&, t](std::span<uint8_t> out) {
                   ASSERT_EQ(int64_t(out.size()), dtype_row_bytes(t, 64));
                   quantize_row(t, data.data(), out.data(), 64);
                 });
  }
  const auto path = dir / "w.gguf";
  w.write(path);
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  const auto f = GgufFile::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->metadata().size(), 4u);
  EXPECT_TRUE(f->get("x.flag").as_bool());
  EXPECT_EQ(f->get("x.list").as_array().at(1).as_f64(), 2.5);
  EXPECT_EQ(f->get("x.nested").as_array().at(0).as_array().at(1).as_i64(), 2);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    const GgufTensorInfo* info = f->find_tensor(std::string("t.") + std::string(dtype_name(t)));
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->type, t);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(info->data) % 32, 0u);
    std::vector<float> back(64);
    dequantize_row(t, info->data, back.data(), 64);
    for (size_t i = 0; i < 64; ++i) {
      // Within one quantisation step of the value's 32-element block (half a step for Q8_0).
      float amax = 0.0f;
      for (size_t j = i / 32 * 32; j < i / 32 * 32 + 32; ++j)
        amax = std::max(amax, std::fabs(data[j]));
      const double tol = t == DType::F32    ? 0.0
                         : t == DType::Q8_0 ? amax / 127.0 * 0.51
                         : t == DType::Q4_0 ? amax / 8.0 * 1.01
                                            : std::fabs(data[i]) / 128.0;
      EXPECT_NEAR(back[i], data[i], tol) << dtype_name(t) << " element " << i;
    }
  }
}

TEST(ParserGguf, OpenReportsMissingFile) {
  try {
    GgufFile::open("/nonexistent/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace ep
