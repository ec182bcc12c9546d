// The ggml block types made by llama.cpp's llama-quantize (Q4_1, Q5_0, Q5_1, Q2_K ... Q6_K):
// ids and layouts, and dequantisation bit for bit against gguf-py's numpy dequantiser over the
// files in tests/fixtures/kquant (how they were made: tests/fixtures/README.md).
#include "core/dtype.h"
#include "core/error.h"
#include "core/half.h"
#include "core/npy.h"
#include "core/quant.h"
#include "core/quant_check.h"
#include "model/gguf.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <set>

namespace ep {
namespace {

const std::filesystem::path kDir = test::fixtures_dir() / "kquant";

const DType kNewTypes[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,
                           DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

TEST(QuantK, IdsAndBlockLayoutsAreGgmls) {
  struct Layout {
    uint32_t id;
    DType type;
    const char* name;
    int64_t elems, bytes;
  };
  const Layout layouts[] = {
      {3, DType::Q4_1, "q4_1", 32, 20},    {6, DType::Q5_0, "q5_0", 32, 22},
      {7, DType::Q5_1, "q5_1", 32, 24},    {10, DType::Q2_K, "q2_k", 256, 84},
      {11, DType::Q3_K, "q3_k", 256, 110}, {12, DType::Q4_K, "q4_k", 256, 144},
      {13, DType::Q5_K, "q5_k", 256, 176}, {14, DType::Q6_K, "q6_k", 256, 210},
  };
  for (const Layout& l : layouts) {
    EXPECT_EQ(dtype_from_ggml_id(l.id), l.type) << l.name;
    EXPECT_EQ(uint32_t(l.type), l.id);
    EXPECT_EQ(dtype_name(l.type), l.name);
    EXPECT_EQ(dtype_from_name(l.name), l.type);
    EXPECT_EQ(dtype_block_elems(l.type), l.elems) << l.name;
    EXPECT_EQ(dtype_block_bytes(l.type), l.bytes) << l.name;
    EXPECT_EQ(dtype_is_k_quant(l.type), l.elems == 256) << l.name;
  }
  EXPECT_EQ(dtype_from_ggml_id(15), std::nullopt);  // Q8_K: an activation type only
  EXPECT_EQ(dtype_from_ggml_id(16), std::nullopt);  // IQ2_XXS
}

TEST(QuantK, QuantisingToAReadOnlyTypeIsAClearError) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> out(256);
  for (DType t : kNewTypes) {
    try {
      quantize_row(t, x.data(), out.data(), 256);
      ADD_FAILURE() << dtype_name(t);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(dtype_name(t)), std::string::npos) << e.what();
    }
  }
}

// Every quantised tensor of every fixture file: its first rows, dequantised by us, equal the
// values gguf-py computed, bit for bit.
TEST(QuantK, DequantisesBitIdenticalToGgufPy) {
  std::set<DType> covered;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    if (entry.path().extension() != ".gguf" || entry.path().stem() == "tiny-f16") continue;
    ++files;
    const auto ref_dir = std::filesystem::path(entry.path()).replace_extension(".ref");
    const auto gguf = GgufFile::open(entry.path());
    for (const GgufTensorInfo& t : gguf->tensors()) {
      if (dtype_block_elems(t.type) == 1) continue;
      const NpyArray ref = read_npy(ref_dir / (t.name + ".npy"));
      ASSERT_EQ(ref.shape.size(), 2u);
      ASSERT_EQ(ref.shape[1], t.shape[0]) << t.name;
      const int64_t n = ref.shape[0] * ref.shape[1];
      std::vector<float> ours(static_cast<size_t>(n));
      dequantize_row(t.type, t.data, ours.data(), n);
      int64_t mismatches = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float want = float(ref.data[size_t(i)]);  // f32 values stored exactly
        if (std::bit_cast<uint32_t>(ours[size_t(i)]) != std::bit_cast<uint32_t>(want)) {
          if (mismatches++ < 3) {
            ADD_FAILURE() << entry.path().filename() << " " << t.name << " (" << dtype_name(t.type)
                          << ") element " << i << ": " << ours[size_t(i)] << " vs " << want;
          }
        }
      }
      EXPECT_EQ(mismatches, 0) << entry.path().filename() << " " << t.name;
      covered.insert(t.type);
    }
  }
  EXPECT_GE(files, 8);
  for (DType t : kNewTypes) EXPECT_TRUE(covered.count(t)) << dtype_name(t) << " not covered";
}

TEST(QuantK, FindsTheFirstNonFiniteScale) {
  for (DType t : kNewTypes) {
    const int64_t bb = dtype_block_bytes(t);
    std::vector<uint8_t> blocks(size_t(bb * 4), 0);
    EXPECT_FALSE(find_nonfinite_scale(t, blocks.data(), 4)) << dtype_name(t);
    // The super-block scale d of block 2: first in the block except for Q2_K, Q3_K, Q6_K.
    size_t d_at = 0;
    if (t == DType::Q2_K) d_at = offsetof(BlockQ2_K, d);
    if (t == DType::Q3_K) d_at = offsetof(BlockQ3_K, d);
    if (t == DType::Q6_K) d_at = offsetof(BlockQ6_K, d);
    const uint16_t inf = 0x7c00, nan = 0x7e01;
    std::memcpy(&blocks[size_t(2 * bb) + d_at], &nan, 2);
    std::memcpy(&blocks[size_t(3 * bb) + d_at], &inf, 2);
    const auto bad = find_nonfinite_scale(t, blocks.data(), 4);
    ASSERT_TRUE(bad) << dtype_name(t);
    EXPECT_EQ(bad->block, 2);
    EXPECT_EQ(bad->field, "d");
    EXPECT_TRUE(std::isnan(bad->value));
    EXPECT_FALSE(find_nonfinite_scale(t, blocks.data(), 2));
  }
}

}  // namespace
}  // namespace ep
