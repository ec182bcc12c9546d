// The matrix product for the block types llama-quantize writes (Q4_1, Q5_0, Q5_1, Q2_K ... Q6_K)
// on random blocks: in the exact precision it equals, bit for bit, the product of the same
// activations with the dequantised weights stored as F32, at every instruction-set level and batch
// size; in the fast precision it stays within 2e-6 (relative L2) of a double reference over the
// dequantised weights where the blocks are expanded to f32 (only the summation order differs), and
// within 1e-5 of that reference on 8-bit activations where Q3_K ... Q6_K decode with integer
// dot products (within 0.1 of the unquantised product on these random blocks), and within 2e-6 of
// the reference on bf16-rounded weights and activations where they prefill through the bf16 GEMM
// (AVX-512 BF16).
#include "core/half.h"
#include "core/quant.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace ep {
namespace {

using kernels::Isa;

const DType kTypes[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,
                        DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Random bytes with finite f16 scales: d in [0.002, 0.05], mins in [0, 0.05] (K-quants) or
// [-1, 0] (the additive min of Q4_1 / Q5_1).
std::vector<uint8_t> random_blocks(DType t, int64_t n_blocks, std::mt19937& rng) {
  const int64_t bb = dtype_block_bytes(t);
  std::vector<uint8_t> b(size_t(n_blocks * bb));
  for (auto& v : b) v = uint8_t(rng());
  std::uniform_real_distribution<float> scale(0.002f, 0.05f), kmin(0.0f, 0.05f), add(-1.0f, 0.0f);
  const auto set = [&](int64_t blk, size_t at, float v) {
    const uint16_t h = f32_to_f16(v);
    std::memcpy(&b[size_t(blk * bb) + at], &h, 2);
  };
  for (int64_t i = 0; i < n_blocks; ++i) {
    switch (t) {
      case DType::Q4_1:
      case DType::Q5_1:
        set(i, 0, scale(rng)), set(i, 2, add(rng));
        break;
      case DType::Q5_0:
        set(i, 0, scale(rng));
        break;
      case DType::Q2_K:
        set(i, offsetof(BlockQ2_K, d), scale(rng)), set(i, offsetof(BlockQ2_K, dmin), kmin(rng));
        break;
      case DType::Q3_K:
        set(i, offsetof(BlockQ3_K, d), scale(rng));
        break;
      case DType::Q4_K:
      case DType::Q5_K:
        set(i, 0, scale(rng)), set(i, 2, kmin(rng));
        break;
      case DType::Q6_K:
        set(i, offsetof(BlockQ6_K, d), scale(rng) * 0.05f);
        break;
      default:
        break;
    }
  }
  return b;
}

std::vector<float> random_vector(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

TEST(KernelsKQuant, ProductEqualsTheDequantisedF32Product) {
  std::mt19937 rng(24);
  ThreadPool pool(2);
  struct Shape {
    int64_t rows, cols;
  };
  const Shape shapes[] = {{1, 256}, {5, 512}, {33, 768}, {70, 256}, {17, 1024}};
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (kernels::clamp_isa(isa) != isa) continue;  // not on this CPU
    for (DType t : kTypes) {
      for (const Shape& sh : shapes) {
        const int64_t rows = sh.rows, cols = sh.cols;
        const auto wq = random_blocks(t, rows * cols / dtype_block_elems(t), rng);
        std::vector<float> wd(size_t(rows * cols));
        dequantize_row(t, wq.data(), wd.data(), rows * cols);
        for (float v : wd) ASSERT_TRUE(std::isfinite(v));
        const MatrixView m{t, rows, cols, wq.data()}, mf{DType::F32, rows, cols, wd.data()};
        for (int64_t n_rows : {1, 2, 3, 7, 13}) {
          const auto x = random_vector(size_t(n_rows * cols), rng);
          const size_t n_out = size_t(n_rows * rows);
          std::vector<float> y(n_out, std::numeric_limits<float>::quiet_NaN()), yf(n_out);
          kernels::matmul(m, x.data(), n_rows, y.data(), pool, isa, kernels::Precision::Exact);
          kernels::matmul(mf, x.data(), n_rows, yf.data(), pool, isa, kernels::Precision::Exact);
          for (size_t i = 0; i < n_out; ++i) {
            ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(yf[i]))
                << kernels::cpu_isa_name(isa) << " " << dtype_name(t) << " " << rows << "x" << cols
                << " n_rows " << n_rows << " output " << i;
          }
          // The fast precision against a double reference of the dequantised weights: the f32
          // expansion (exact products), or for Q3_K ... Q6_K decode on SIMD CPUs 8-bit
          // activations (d = max|x| / 127 per 32-block, q rounded to nearest even) and integer
          // dot products, against the reference on the same quantised activations.
          const bool int8 =
              n_rows < 3 && isa != Isa::Scalar &&
              (t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K);
          // Prefill of those types on AVX-512 BF16 CPUs: weights and activations rounded to bf16.
          const bool bf16 =
              n_rows >= 3 && isa == Isa::Avx512 && kernels::cpu_features().avx512bf16 &&
              (t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K);
          std::vector<double> xr(x.begin(), x.end());
          std::vector<double> wr(wd.begin(), wd.end());
          if (bf16) {
            for (size_t k = 0; k < x.size(); ++k) xr[k] = bf16_to_f32(f32_to_bf16(x[k]));
            for (size_t k = 0; k < wd.size(); ++k) wr[k] = bf16_to_f32(f32_to_bf16(wd[k]));
          }
          if (int8) {
            for (size_t b = 0; b < x.size() / 32; ++b) {
              float mx = 0;
              for (int j = 0; j < 32; ++j) mx = std::max(mx, std::fabs(x[b * 32 + size_t(j)]));
              const float d = mx / 127.0f, id = mx != 0 ? 127.0f / mx : 0.0f;
              for (int j = 0; j < 32; ++j)
                xr[b * 32 + size_t(j)] = double(d) * std::nearbyint(x[b * 32 + size_t(j)] * id);
            }
          }
          std::vector<float> yq(n_out, std::numeric_limits<float>::quiet_NaN());
          kernels::matmul(m, x.data(), n_rows, yq.data(), pool, isa, kernels::Precision::Fast);
          double num = 0, den = 0, num_exact = 0;
          for (int64_t i = 0; i < n_rows; ++i) {
            for (int64_t r = 0; r < rows; ++r) {
              double s = 0, s_exact = 0;
              for (int64_t c = 0; c < cols; ++c) {
                s += wr[size_t(r * cols + c)] * xr[size_t(i * cols + c)];
                s_exact += double(wd[size_t(r * cols + c)]) * double(x[size_t(i * cols + c)]);
              }
              const double got = yq[size_t(i * rows + r)];
              num += (got - s) * (got - s);
              num_exact += (got - s_exact) * (got - s_exact);
              den += s_exact * s_exact;
            }
          }
          SCOPED_TRACE(::testing::Message() << kernels::cpu_isa_name(isa) << " " << dtype_name(t)
                                            << " fast n_rows " << n_rows);
          // f32 scaling and sums only: 2e-6 for the expansion, 1e-5 with the per-block scales
          // (d·scale·d_x and the min term rounded apart).
          EXPECT_LT(std::sqrt(num / den), int8 ? 1e-5 : 2e-6);
          if (bf16) {
            EXPECT_LT(std::sqrt(num_exact / den), 2e-2);  // the cost of bf16 rounding, for scale
          }
          if (int8) {
            // The cost of 8-bit activations, for scale (random blocks: up to 5e-2 measured).
            EXPECT_LT(std::sqrt(num_exact / den), 0.1);
          }
        }
      }
    }
  }
}

// Exact results do not depend on the batch: each activation row alone equals its row in a batch.
TEST(KernelsKQuant, ExactResultsDoNotDependOnTheBatch) {
  std::mt19937 rng(25);
  ThreadPool pool(2);
  const int64_t rows = 40, cols = 512, n_rows = 9;
  for (DType t : kTypes) {
    const auto wq = random_blocks(t, rows * cols / dtype_block_elems(t), rng);
    const MatrixView m{t, rows, cols, wq.data()};
    const auto x = random_vector(size_t(n_rows * cols), rng);
    std::vector<float> batch(size_t(n_rows * rows)), alone(static_cast<size_t>(rows));
    kernels::matmul(m, x.data(), n_rows, batch.data(), pool);
    for (int64_t i = 0; i < n_rows; ++i) {
      kernels::matmul(m, x.data() + i * cols, 1, alone.data(), pool);
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_EQ(alone[size_t(r)], batch[size_t(i * rows + r)]) << dtype_name(t) << " row " << i;
    }
  }
}

}  // namespace
}  // namespace ep
