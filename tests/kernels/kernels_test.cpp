// CPU kernels against plain double-precision references on random inputs (odd sizes, tails).
#include "core/error.h"
#include "core/half.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace ep {
namespace {

using kernels::Isa;

std::vector<float> random_vector(size_t n, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double rel_error(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

std::vector<float> rounded_to_bf16(std::vector<float> v) {
  for (float& e : v) e = bf16_to_f32(f32_to_bf16(e));
  return v;
}

// The reference product in double: y[i * rows + r] = Σ_c w[r * cols + c] · x[i * cols + c] for
// every row r of w ([rows, cols]) and every activation row i of x ([x.size() / cols, cols]).
template <class W, class X>
std::vector<double> reference_matmul(const std::vector<W>& w, const std::vector<X>& x, int64_t rows,
                                     int64_t cols) {
  const int64_t n_rows = int64_t(x.size()) / cols;
  std::vector<double> y(size_t(n_rows * rows));
  for (int64_t i = 0; i < n_rows; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c)
        s += double(w[size_t(r * cols + c)]) * double(x[size_t(i * cols + c)]);
      y[size_t(i * rows + r)] = s;
    }
  }
  return y;
}

TEST(Half, F16RoundTripsEveryValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h) << h;
  }
}

TEST(Half, F16RoundsToNearest) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> exp_dist(-20.0f, 16.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::ldexp(float(rng()) / 4294967296.0f + 0.5f, int(exp_dist(rng))) *
                    (rng() & 1 ? 1.0f : -1.0f);
    const float r = f16_to_f32(f32_to_f16(x));
    // No other f16 value is closer: check the neighbours of the result.
    const uint16_t h = f32_to_f16(x);
    for (int d : {-1, 1}) {
      const float n = f16_to_f32(uint16_t(h + d));
      if (std::isfinite(n)) {
        EXPECT_LE(std::fabs(double(r) - x), std::fabs(double(n) - x)) << x;
      }
    }
  }
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(70000.0f))));
}

TEST(Half, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.00390625f)), 1.0f);       // tie -> even
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.01171875f)), 1.015625f);  // tie -> even (up)
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Quant, Q8_0MatchesTheGgmlDefinition) {
  std::mt19937 rng(2);
  const auto x = random_vector(32 * 7, rng, 3.0f);
  std::vector<BlockQ8_0> blocks(7);
  quantize_row(DType::Q8_0, x.data(), blocks.data(), int64_t(x.size()));
  std::vector<float> back(x.size());
  dequantize_row(DType::Q8_0, blocks.data(), back.data(), int64_t(x.size()));
  for (size_t b = 0; b < 7; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    EXPECT_EQ(blocks[b].d, f32_to_f16(amax / 127.0f));
    for (int j = 0; j < 32; ++j) {
      EXPECT_EQ(blocks[b].qs[j], int8_t(std::lround(x[b * 32 + j] / (amax / 127.0f))));
      EXPECT_EQ(back[b * 32 + j], f16_to_f32(blocks[b].d) * float(blocks[b].qs[j]));
    }
  }
}

TEST(Quant, Q4_0MatchesTheGgmlDefinition) {
  std::mt19937 rng(3);
  const auto x = random_vector(32 * 5, rng, 2.0f);
  std::vector<BlockQ4_0> blocks(5);
  quantize_row(DType::Q4_0, x.data(), blocks.data(), int64_t(x.size()));
  std::vector<float> back(x.size());
  dequantize_row(DType::Q4_0, blocks.data(), back.data(), int64_t(x.size()));
  for (size_t b = 0; b < 5; ++b) {
    float max = 0;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(x[b * 32 + j]) > std::fabs(max)) max = x[b * 32 + j];
    }
    const float d = max / -8.0f;
    EXPECT_EQ(blocks[b].d, f32_to_f16(d));
    for (int j = 0; j < 32; ++j) {
      const int q = std::min(15, int(x[b * 32 + j] / d + 8.5f));
      const int stored = j < 16 ? blocks[b].qs[j] & 15 : blocks[b].qs[j - 16] >> 4;
      EXPECT_EQ(stored, q) << b << " " << j;
      EXPECT_EQ(back[b * 32 + j], f16_to_f32(blocks[b].d) * float(q - 8));
    }
  }
}

TEST(Kernels, MatmulMatchesReferenceForEveryType) {
  std::mt19937 rng(4);
  ThreadPool pool(3);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    for (int64_t n_rows : {1, 3, 17}) {
      const int64_t rows = 37, cols = 96;  // rows not a multiple of the kernel's block
      const auto wf = random_vector(size_t(rows * cols), rng);
      std::vector<uint8_t> wq(size_t(rows * dtype_row_bytes(t, cols)));
      for (int64_t r = 0; r < rows; ++r) {
        quantize_row(t, &wf[size_t(r * cols)], wq.data() + r * dtype_row_bytes(t, cols), cols);
      }
      // The reference multiplies the dequantised weights in double.
      std::vector<float> wd(wf.size());
      for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(t, wq.data() + r * dtype_row_bytes(t, cols), &wd[size_t(r * cols)], cols);
      }
      const auto x = random_vector(size_t(n_rows * cols), rng);
      const std::vector<double> ref = reference_matmul(wd, x, rows, cols);
      std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());  // poisoned
      kernels::matmul(MatrixView{t, rows, cols, wq.data()}, x.data(), n_rows, y.data(), pool);
      EXPECT_LT(rel_error(y, ref), 1e-6) << dtype_name(t) << " n_rows " << n_rows;
    }
  }
}

// Every instruction-set path (scalar, AVX2, AVX-512 where the CPU has them) against a double
// reference on the dequantised weights, over odd shapes: rows not a multiple of any panel, column
// counts with tails for the float types, K spanning several cache blocks, and token counts that
// take the matrix-vector path (1, 2) and the GEMM with partial register tiles.
TEST(Kernels, MatmulEveryIsaMatchesReference) {
  std::mt19937 rng(40);
  ThreadPool pool(2);
  struct Shape {
    int64_t rows, cols;
  };
  const Shape float_shapes[] = {{1, 7}, {5, 45}, {33, 100}, {70, 257}, {19, 608}};
  const Shape quant_shapes[] = {{1, 32}, {5, 96}, {33, 288}, {70, 1056}, {17, 64}};
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (kernels::clamp_isa(isa) != isa) continue;  // not on this CPU
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
      const bool quant = t == DType::Q8_0 || t == DType::Q4_0;
      for (const Shape& sh : quant ? quant_shapes : float_shapes) {
        const int64_t rows = sh.rows, cols = sh.cols, rb = dtype_row_bytes(t, cols);
        const auto wf = random_vector(size_t(rows * cols), rng);
        std::vector<uint8_t> wq(size_t(rows * rb));
        for (int64_t r = 0; r < rows; ++r)
          quantize_row(t, &wf[size_t(r * cols)], wq.data() + r * rb, cols);
        std::vector<float> wd(wf.size());
        for (int64_t r = 0; r < rows; ++r)
          dequantize_row(t, wq.data() + r * rb, &wd[size_t(r * cols)], cols);
        for (int64_t n_rows : {1, 2, 3, 5, 13, 30}) {
          const auto x = random_vector(size_t(n_rows * cols), rng);
          const std::vector<double> ref = reference_matmul(wd, x, rows, cols);
          const MatrixView m{t, rows, cols, wq.data()};
          for (auto prec : {kernels::Precision::Exact, kernels::Precision::Fast}) {
            if (prec == kernels::Precision::Fast && isa == Isa::Avx512 && n_rows >= 3 &&
                (t == DType::F16 || t == DType::BF16) && kernels::cpu_features().avx512bf16) {
              continue;  // bf16 GEMM: below
            }
            if (prec == kernels::Precision::Fast && quant && isa != Isa::Scalar)
              continue;  // 8-bit: below
            if (prec == kernels::Precision::Fast && t == DType::F16 && isa == Isa::Avx512 &&
                n_rows < 3) {
              continue;  // half activations: below
            }
            std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
            kernels::matmul(m, x.data(), n_rows, y.data(), pool, isa, prec);
            // f32 sums of exact products: a few ulps per term, relative to the result's norm.
            EXPECT_LT(rel_error(y, ref), 2e-6)
                << kernels::cpu_isa_name(isa) << " " << dtype_name(t) << " " << rows << "x" << cols
                << " n_rows " << n_rows << (prec == kernels::Precision::Fast ? " fast" : " exact");
          }
          // Exact results do not depend on the batch: each row alone equals its row in the batch.
          std::vector<float> batch(ref.size()), alone(static_cast<size_t>(rows));
          kernels::matmul(m, x.data(), n_rows, batch.data(), pool, isa);
          for (int64_t i = 0; i < n_rows; ++i) {
            kernels::matmul(m, x.data() + i * cols, 1, alone.data(), pool, isa);
            for (int64_t r = 0; r < rows; ++r) {
              ASSERT_EQ(alone[size_t(r)], batch[size_t(i * rows + r)])
                  << kernels::cpu_isa_name(isa) << " " << dtype_name(t) << " row " << i;
            }
          }
        }
      }
    }
  }
}

// The fast paths (8-bit activations, AVX2 and AVX-512 VNNI: the decode matvec for 1-2 rows, the
// prefill GEMM for more) against a double reference that quantises the activations the same way
// (d = max|x| / 127 per 32-block, q = x · (127 / max|x|) rounded to nearest even): the integer dot
// products must be exact, so only f32 scaling rounding remains. Row counts exercise partial
// panels (16 rows AVX2, 32 VNNI) and token counts every partial register tile (4 tokens AVX2, 6
// VNNI); rows and activation blocks at the extremes (nibbles all 15 or 0, Q8_0 weights all -128 or
// 127, activations all ±max) reach the largest intermediate sums the kernels must hold.
TEST(Kernels, FastQuantisedMatmulMatchesReference) {
  if (kernels::clamp_isa(Isa::Avx2) != Isa::Avx2) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(41);
  ThreadPool pool(2);
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (kernels::clamp_isa(isa) != isa) continue;  // not on this CPU
    for (DType t : {DType::Q8_0, DType::Q4_0}) {
      for (int64_t cols : {32, 64, 96, 2048, 5632 + 32}) {  // odd and even block counts
        const int64_t rows = cols == 96 ? 7 : cols == 64 ? 64 : 45, rb = dtype_row_bytes(t, cols);
        const auto wf = random_vector(size_t(rows * cols), rng);
        std::vector<uint8_t> wq(size_t(rows * rb));
        for (int64_t r = 0; r < rows; ++r)
          quantize_row(t, &wf[size_t(r * cols)], wq.data() + r * rb, cols);
        // A file may hold -128, which the quantiser never writes.
        if (t == DType::Q8_0) reinterpret_cast<BlockQ8_0*>(wq.data())->qs[3] = -128;
        // Rows 1 and 2 (where present) at the extremes of the type.
        for (int64_t r = 1; r < std::min<int64_t>(rows, 3); ++r) {
          for (int64_t b = 0; b < cols / 32; ++b) {
            uint8_t* blk = wq.data() + r * rb + b * (t == DType::Q8_0 ? 34 : 18);
            if (t == DType::Q8_0)
              std::memset(blk + 2, r == 1 ? 0x80 : 0x7f, 32);  // -128 or 127
            else
              std::memset(blk + 2, r == 1 ? 0xff : 0x00, 16);  // nibbles 15 or 0
          }
        }
        std::vector<float> wd(wf.size());
        for (int64_t r = 0; r < rows; ++r)
          dequantize_row(t, wq.data() + r * rb, &wd[size_t(r * cols)], cols);
        for (int64_t n_rows : {1, 2, 3, 5, 6, 7, 10, 13}) {
          auto x = random_vector(size_t(n_rows * cols), rng, 3.0f);
          for (int64_t c = 0; c < 32; ++c) x[size_t(c)] = 3.0f;  // a block of +max
          for (int64_t c = 32; c < std::min<int64_t>(64, cols); ++c)
            x.at(size_t(c)) = 0.0f;  // an all-zero block
          for (int64_t c = 64; c < std::min<int64_t>(96, cols); ++c)
            x.at(size_t(c)) = -3.0f;         // a block of -max
          std::vector<double> xq(x.size());  // each 32-block quantised as the kernels do
          for (size_t b = 0; b < x.size() / 32; ++b) {
            const float* xb = &x[b * 32];
            float m = 0;
            for (int j = 0; j < 32; ++j) m = std::max(m, std::fabs(xb[j]));
            const float d = m / 127.0f, id = m != 0 ? 127.0f / m : 0.0f;
            for (int j = 0; j < 32; ++j)
              xq[b * 32 + size_t(j)] = double(d) * std::nearbyint(xb[j] * id);
          }
          const std::vector<double> ref = reference_matmul(wd, xq, rows, cols);
          const std::vector<double> exact = reference_matmul(wd, x, rows, cols);
          std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
          kernels::matmul(MatrixView{t, rows, cols, wq.data()}, x.data(), n_rows, y.data(), pool,
                          isa, kernels::Precision::Fast);
          SCOPED_TRACE(::testing::Message() << kernels::cpu_isa_name(isa) << " " << dtype_name(t)
                                            << " cols " << cols << " n_rows " << n_rows);
          EXPECT_LT(rel_error(y, ref), 2e-6);
          EXPECT_LT(rel_error(y, exact), 2e-2);  // the cost of 8-bit activations, for scale
        }
      }
    }
  }
}

// The fast prefill path for F16/BF16 weights (AVX-512 BF16): weights and activations rounded to
// bf16, products exact, f32 sums. Against a double reference on the same rounded values; odd
// column counts exercise the padded last column pair and the slice tails, row counts partial
// 32-row panels, token counts partial register tiles.
TEST(Kernels, FastBf16GemmMatchesReference) {
  if (!(kernels::clamp_isa(Isa::Avx512) == Isa::Avx512 && kernels::cpu_features().avx512bf16)) {
    GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  }
  std::mt19937 rng(42);
  ThreadPool pool(2);
  for (DType t : {DType::F16, DType::BF16}) {
    for (int64_t cols : {45, 257, 600, 2048 + 17}) {
      const int64_t rows = cols == 45 ? 7 : cols == 257 ? 64 : 33, rb = dtype_row_bytes(t, cols);
      const auto wf = random_vector(size_t(rows * cols), rng);
      std::vector<uint8_t> wq(size_t(rows * rb));
      for (int64_t r = 0; r < rows; ++r) {
        quantize_row(t, &wf[size_t(r * cols)], wq.data() + r * rb, cols);
      }
      std::vector<float> wd(wf.size());
      for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(t, wq.data() + r * rb, &wd[size_t(r * cols)], cols);
      }
      const std::vector<float> wd_bf16 = rounded_to_bf16(wd);
      for (int64_t n_rows : {3, 13, 30}) {
        const auto x = random_vector(size_t(n_rows * cols), rng, 3.0f);
        const std::vector<double> ref = reference_matmul(wd_bf16, rounded_to_bf16(x), rows, cols);
        const std::vector<double> exact = reference_matmul(wd, x, rows, cols);
        std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
        kernels::matmul(MatrixView{t, rows, cols, wq.data()}, x.data(), n_rows, y.data(), pool,
                        Isa::Avx512, kernels::Precision::Fast);
        SCOPED_TRACE(::testing::Message()
                     << dtype_name(t) << " " << rows << "x" << cols << " n_rows " << n_rows);
        EXPECT_LT(rel_error(y, ref), 2e-6);
        EXPECT_LT(rel_error(y, exact), 1e-2);  // the cost of bf16 rounding, for scale
      }
    }
  }
}

// The fast decode path for F16 weights (AVX-512): activations rounded to F16, products exact,
// f32 sums. Against a double reference on the same rounded activations; column counts with
// every tail length class (masked loads that must not read past the row), row counts that are
// not a multiple of the pool's chunks.
TEST(Kernels, FastHalfMatvecMatchesReference) {
  if (kernels::clamp_isa(Isa::Avx512) != Isa::Avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(44);
  ThreadPool pool(2);
  for (int64_t cols : {7, 16, 45, 100, 257, 2048, 5632 + 5}) {
    const int64_t rows = cols < 100 ? 9 : 67, rb = dtype_row_bytes(DType::F16, cols);
    const auto wf = random_vector(size_t(rows * cols), rng);
    std::vector<uint8_t> wq(size_t(rows * rb));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(DType::F16, &wf[size_t(r * cols)], wq.data() + r * rb, cols);
    std::vector<float> wd(wf.size());
    for (int64_t r = 0; r < rows; ++r)
      dequantize_row(DType::F16, wq.data() + r * rb, &wd[size_t(r * cols)], cols);
    for (int64_t n_rows : {1, 2}) {
      const auto x = random_vector(size_t(n_rows * cols), rng, 3.0f);
      std::vector<float> xh(x.size());
      for (size_t i = 0; i < x.size(); ++i) xh[i] = f16_to_f32(f32_to_f16(x[i]));
      const std::vector<double> ref = reference_matmul(wd, xh, rows, cols);
      const std::vector<double> exact = reference_matmul(wd, x, rows, cols);
      std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
      kernels::matmul(MatrixView{DType::F16, rows, cols, wq.data()}, x.data(), n_rows, y.data(),
                      pool, Isa::Avx512, kernels::Precision::Fast);
      SCOPED_TRACE(::testing::Message() << rows << "x" << cols << " n_rows " << n_rows);
      EXPECT_LT(rel_error(y, ref), 2e-6);
      EXPECT_LT(rel_error(y, exact), 2e-3);  // the cost of F16 activations, for scale
    }
  }
}

// The warm-up a decode product hands the pool for the next one: each participant's range starts
// where its run of the next pass starts (the pass over the matrices matmul_multi would run
// together) and stays within that run, within one matrix and within 512 KiB.
TEST(Kernels, DecodeWarmupsStartEachRunWithinItsMatrix) {
  const int64_t cols = 2048;
  std::vector<uint8_t> store(size_t(3) << 20);
  const int64_t rb = dtype_row_bytes(DType::F16, cols);
  const MatrixView a{DType::F16, 45, cols, store.data()};
  const MatrixView b{DType::F16, 300, cols, store.data() + 45 * rb};
  const MatrixView c{DType::F16, 17, cols, store.data() + 345 * rb};
  const MatrixView narrow{DType::F16, 64, cols / 2, store.data()};
  const kernels::Isa isa = kernels::active_isa();
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    std::vector<ThreadPool::Warmup> warm;
    kernels::detail::decode_warmups({}, pool, isa, warm);
    EXPECT_TRUE(warm.empty());
    const MatrixView* const next[] = {&a, &b, &c};
    kernels::detail::decode_warmups(next, pool, isa, warm);
    ASSERT_EQ(warm.size(), size_t(threads));
    const int64_t total = 45 + 300 + 17, grain = kernels::detail::decode_grain(total, pool);
    for (int i = 0; i < threads; ++i) {
      SCOPED_TRACE(::testing::Message() << threads << " threads, participant " << i);
      const int64_t row = pool.run_begin(total, grain, i),
                    end = pool.run_begin(total, grain, i + 1);
      const auto* p = static_cast<const uint8_t*>(warm[size_t(i)].data);
      if (row == end) {
        EXPECT_EQ(warm[size_t(i)].bytes, 0);
        continue;
      }
      ASSERT_EQ(p, store.data() + row * rb);  // the matrices are back to back in `store`
      const int64_t matrix_end = row < 45 ? 45 : row < 345 ? 345 : total;
      EXPECT_EQ(warm[size_t(i)].bytes,
                std::min<int64_t>(512 << 10, (std::min(end, matrix_end) - row) * rb));
    }
    // A matrix of another width (or decode path) ends the pass: only `a` is warmed for.
    const MatrixView* const mixed[] = {&a, &narrow};
    kernels::detail::decode_warmups(mixed, pool, isa, warm);
    const int64_t grain_a = kernels::detail::decode_grain(45, pool);
    for (int i = 0; i < threads; ++i) {
      const int64_t row = pool.run_begin(45, grain_a, i), end = pool.run_begin(45, grain_a, i + 1);
      EXPECT_EQ(warm[size_t(i)].bytes, (end - row) * rb) << threads << " " << i;
    }
  }
}

// matmul_multi (several matrices, one input) gives exactly what separate matmul calls give, in
// both precisions, for decode and prefill row counts and mixed types, with or without the next
// weights named.
TEST(Kernels, MatmulMultiEqualsSeparateCalls) {
  std::mt19937 rng(43);
  ThreadPool pool(2);
  const int64_t cols = 96;
  for (auto types :
       {std::vector<DType>{DType::Q4_0, DType::Q4_0, DType::Q8_0},
        std::vector<DType>{DType::F16, DType::F16}, std::vector<DType>{DType::Q4_0, DType::F16},
        std::vector<DType>{DType::F16, DType::BF16}}) {
    std::vector<std::vector<uint8_t>> data;
    std::vector<MatrixView> ws;
    const int64_t rows[] = {45, 17, 64};
    for (size_t m = 0; m < types.size(); ++m) {
      const int64_t rb = dtype_row_bytes(types[m], cols);
      const auto wf = random_vector(size_t(rows[m] * cols), rng);
      data.emplace_back(size_t(rows[m] * rb));
      for (int64_t r = 0; r < rows[m]; ++r) {
        quantize_row(types[m], &wf[size_t(r * cols)], data.back().data() + r * rb, cols);
      }
    }
    for (size_t m = 0; m < types.size(); ++m)
      ws.push_back({types[m], rows[m], cols, data[m].data()});
    for (auto prec : {kernels::Precision::Exact, kernels::Precision::Fast}) {
      for (int64_t n_rows : {1, 2, 5}) {
        const auto x = random_vector(size_t(n_rows * cols), rng);
        std::vector<std::vector<float>> multi, single;
        std::vector<kernels::MatmulOut> outs;
        for (const MatrixView& w : ws) {
          multi.emplace_back(size_t(n_rows * w.rows));
          single.emplace_back(size_t(n_rows * w.rows));
        }
        std::vector<const MatrixView*> all;
        for (size_t m = 0; m < ws.size(); ++m) {
          outs.push_back({&ws[m], multi[m].data()});
          all.push_back(&ws[m]);
        }
        // Naming the weights that come next (a prefetch hint) changes no result.
        kernels::matmul_multi(outs, x.data(), n_rows, pool, prec, all);
        for (size_t m = 0; m < ws.size(); ++m) {
          const MatrixView* const next[] = {&ws[(m + 1) % ws.size()]};
          kernels::matmul(ws[m], x.data(), n_rows, single[m].data(), pool, prec,
                          m % 2 ? kernels::NextWeights(next) : kernels::NextWeights());
        }
        for (size_t m = 0; m < ws.size(); ++m)
          EXPECT_EQ(multi[m], single[m]) << m << " n_rows " << n_rows;
      }
    }
  }
}

TEST(Kernels, CpuFeatureDispatch) {
  EXPECT_LE(int(kernels::active_isa()), int(kernels::detected_isa()));
  EXPECT_EQ(kernels::clamp_isa(Isa::Scalar), Isa::Scalar);
  const auto& f = kernels::cpu_features();
  if (kernels::detected_isa() >= Isa::Avx2) {
    EXPECT_TRUE(f.avx2 && f.fma && f.f16c);
  }
  if (kernels::detected_isa() == Isa::Avx512) {
    EXPECT_TRUE(f.avx512f && f.avx512bw && f.avx512vl);
  }
  EXPECT_EQ(kernels::cpu_isa_name(Isa::Avx2), "avx2");
}

TEST(Kernels, RmsNormAndSwiglu) {
  std::mt19937 rng(5);
  const int64_t n = 77;
  const auto x = random_vector(size_t(2 * n), rng), w = random_vector(size_t(n), rng);
  std::vector<float> y(x.size());
  kernels::rmsnorm(x.data(), w.data(), y.data(), 2, n, 1e-5f);
  for (int64_t r = 0; r < 2; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[size_t(r * n + i)]) * x[size_t(r * n + i)];
    const double inv = 1.0 / std::sqrt(ss / double(n) + 1e-5);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(y[size_t(r * n + i)], x[size_t(r * n + i)] * inv * w[size_t(i)], 1e-5);
    }
  }
  const auto g = random_vector(50, rng), u = random_vector(50, rng);
  std::vector<float> o(50);
  kernels::swiglu(g.data(), u.data(), o.data(), 50);
  for (size_t i = 0; i < 50; ++i)
    EXPECT_NEAR(o[i], g[i] / (1 + std::exp(-double(g[i]))) * u[i], 1e-6);
}

// The vectorised SwiGLU over the whole float range it meets (large |g| saturates), with a tail,
// and the thread-team versions of both kernels equal to the single-threaded ones.
TEST(Kernels, SwigluAndRmsNormOverTheTeam) {
  std::mt19937 rng(6);
  ThreadPool pool(2);
  const int64_t n = (1 << 17) + 7;
  auto g = random_vector(size_t(n), rng, 8.0f);
  g[0] = 100.0f;
  g[1] = -100.0f;
  g[2] = 0.0f;
  const auto u = random_vector(size_t(n), rng);
  std::vector<float> one(static_cast<size_t>(n)), team(static_cast<size_t>(n));
  kernels::swiglu(g.data(), u.data(), one.data(), n);
  kernels::swiglu(g.data(), u.data(), team.data(), n, pool);
  EXPECT_EQ(one, team);
  for (size_t i = 0; i < size_t(n); ++i) {
    const double want = g[i] / (1 + std::exp(-double(g[i]))) * u[i];
    ASSERT_NEAR(one[i], want, 1e-6 * (1 + std::fabs(want))) << "g = " << g[i];
  }
  const int64_t rows = 70, d = 2048 + 3;
  const auto x = random_vector(size_t(rows * d), rng), w = random_vector(size_t(d), rng);
  std::vector<float> y1(x.size()), y2(x.size());
  kernels::rmsnorm(x.data(), w.data(), y1.data(), rows, d, 1e-6f);
  kernels::rmsnorm(x.data(), w.data(), y2.data(), rows, d, 1e-6f, pool);
  EXPECT_EQ(y1, y2);
}

TEST(Kernels, RopeLayoutsAgreeUnderThePermutation) {
  std::mt19937 rng(6);
  const int64_t n_tok = 5, n_heads = 3, hd = 16;
  const auto x = random_vector(size_t(n_tok * n_heads * hd), rng);
  const std::vector<int64_t> pos = {0, 1, 7, 100, 4095};
  const auto inv = kernels::rope_inv_freq(hd, 10000.0, {}, 1.0);
  // Adjacent layout of the same vector: element 2i <- i, 2i+1 <- i + hd/2.
  std::vector<float> half = x, adj(x.size());
  for (int64_t v = 0; v < n_tok * n_heads; ++v) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      adj[size_t(v * hd + 2 * i)] = x[size_t(v * hd + i)];
      adj[size_t(v * hd + 2 * i + 1)] = x[size_t(v * hd + i + hd / 2)];
    }
  }
  kernels::rope(half.data(), n_tok, n_heads, hd, pos.data(), inv, kernels::RotaryPairs::Halves);
  kernels::rope(adj.data(), n_tok, n_heads, hd, pos.data(), inv, kernels::RotaryPairs::Adjacent);
  for (int64_t v = 0; v < n_tok * n_heads; ++v) {
    for (int64_t i = 0; i < hd / 2; ++i) {
      EXPECT_EQ(adj[size_t(v * hd + 2 * i)], half[size_t(v * hd + i)]);
      EXPECT_EQ(adj[size_t(v * hd + 2 * i + 1)], half[size_t(v * hd + i + hd / 2)]);
    }
  }
  // Position 0 is the identity; rotation preserves each pair's norm.
  for (int64_t i = 0; i < n_heads * hd; ++i) EXPECT_EQ(half[size_t(i)], x[size_t(i)]);
  const size_t p = size_t(3 * n_heads * hd);
  EXPECT_NEAR(std::hypot(half[p], half[p + hd / 2]), std::hypot(x[p], x[p + hd / 2]), 1e-5);
}

// Naive attention in double for one segment, with the same masking rules.
void reference_attention(const kernels::AttentionArgs& a, std::vector<double>& out,
                         std::vector<double>& lse) {
  const int64_t group = a.n_head / a.n_head_kv;
  out.assign(size_t(a.n_q * a.n_head * a.head_dim), 0.0);
  lse.assign(size_t(a.n_q * a.n_head), -std::numeric_limits<double>::infinity());
  for (int64_t i = 0; i < a.n_q; ++i) {
    for (int64_t h = 0; h < a.n_head; ++h) {
      std::vector<double> s;
      std::vector<int64_t> idx;
      for (int64_t j = 0; j < a.n_kv; ++j) {
        const int64_t qp = a.q_pos0 + i, kp = a.k_pos0 + j;
        if (kp > qp || (a.window > 0 && qp - kp >= a.window)) continue;
        double d = 0;
        for (int64_t c = 0; c < a.head_dim; ++c) {
          d += double(a.q[(i * a.n_head + h) * a.head_dim + c]) *
               a.k[(j * a.n_head_kv + h / group) * a.head_dim + c];
        }
        s.push_back(d * a.scale);
        idx.push_back(j);
      }
      if (s.empty()) continue;
      const double m = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double v : s) sum += std::exp(v - m);
      lse[size_t(i * a.n_head + h)] = m + std::log(sum);
      for (size_t k = 0; k < s.size(); ++k) {
        const double p = std::exp(s[k] - m) / sum;
        for (int64_t c = 0; c < a.head_dim; ++c) {
          out[size_t((i * a.n_head + h) * a.head_dim + c)] +=
              p * a.v[(idx[k] * a.n_head_kv + h / group) * a.head_dim + c];
        }
      }
    }
  }
}

struct AttentionCase {
  int64_t n_q, n_kv, q_pos0, n_head, n_head_kv, head_dim, window;
};

TEST(Kernels, AttentionMatchesReferenceWithLse) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  const AttentionCase cases[] = {{1, 1, 0, 2, 2, 8, 0},       {13, 13, 0, 4, 2, 16, 0},
                                 {5, 200, 195, 6, 2, 32, 0},  {70, 70, 0, 4, 1, 8, 17},
                                 {9, 150, 141, 2, 2, 64, 64}, {3, 300, 297, 4, 1, 128, 0},
                                 {20, 20, 0, 2, 2, 16, 5},    {7, 7, 0, 4, 4, 20, 0},
                                 {33, 100, 67, 8, 2, 64, 0},  {17, 17, 0, 4, 2, 128, 0}};
  for (const auto& c : cases) {
    const auto q = random_vector(size_t(c.n_q * c.n_head * c.head_dim), rng, 2.0f);
    const auto k = random_vector(size_t(c.n_kv * c.n_head_kv * c.head_dim), rng, 2.0f);
    const auto v = random_vector(size_t(c.n_kv * c.n_head_kv * c.head_dim), rng);
    std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> lse(size_t(c.n_q * c.n_head), std::numeric_limits<float>::quiet_NaN());
    kernels::AttentionArgs a{q.data(),
                             c.n_q,
                             c.q_pos0,
                             k.data(),
                             v.data(),
                             c.n_kv,
                             0,
                             c.n_head,
                             c.n_head_kv,
                             c.head_dim,
                             float(1 / std::sqrt(double(c.head_dim))),
                             c.window,
                             out.data(),
                             lse.data()};
    kernels::attention(a, pool);
    std::vector<double> ref_out, ref_lse;
    reference_attention(a, ref_out, ref_lse);
    EXPECT_LT(rel_error(out, ref_out), 1e-5) << c.n_q << "x" << c.n_kv;
    for (size_t i = 0; i < lse.size(); ++i) EXPECT_NEAR(lse[i], ref_lse[i], 1e-4);
  }
}

// A query's attention output is bit-identical whether it is computed in a batch (prefill: the
// AVX-512 kernel then transposes the keys) or alone (decode) - what makes a token's logits
// independent of how the prompt was batched.
TEST(Kernels, AttentionBatchEqualsOneQueryAtATime) {
  std::mt19937 rng(9);
  ThreadPool pool(2);
  for (int64_t hd : {16, 32, 64, 128, 24}) {
    const int64_t n = 150, n_head = 8, n_head_kv = 2;
    const auto q = random_vector(size_t(n * n_head * hd), rng, 2.0f);
    const auto k = random_vector(size_t(n * n_head_kv * hd), rng, 2.0f);
    const auto v = random_vector(size_t(n * n_head_kv * hd), rng);
    std::vector<float> out(q.size()), lse(static_cast<size_t>(n * n_head));
    std::vector<float> out1(static_cast<size_t>(n_head * hd)), lse1(static_cast<size_t>(n_head));
    kernels::AttentionArgs a{q.data(),
                             n,
                             0,
                             k.data(),
                             v.data(),
                             n,
                             0,
                             n_head,
                             n_head_kv,
                             hd,
                             float(1 / std::sqrt(double(hd))),
                             0,
                             out.data(),
                             lse.data()};
    kernels::attention(a, pool);
    for (int64_t i = 0; i < n; ++i) {
      kernels::AttentionArgs b = a;
      b.q = q.data() + i * n_head * hd;
      b.n_q = 1;
      b.q_pos0 = i;
      b.n_kv = i + 1;
      b.out = out1.data();
      b.lse = lse1.data();
      kernels::attention(b, pool);
      for (int64_t e = 0; e < n_head * hd; ++e) {
        ASSERT_EQ(out1[size_t(e)], out[size_t(i * n_head * hd + e)])
            << "head_dim " << hd << " query " << i;
      }
      for (int64_t h = 0; h < n_head; ++h) ASSERT_EQ(lse1[size_t(h)], lse[size_t(i * n_head + h)]);
    }
  }
}

TEST(Kernels, SplitSegmentsMergeToMonolithic) {
  // The cloud/edge property: keys [0, split) and [split, n) attended separately and merged with
  // their LSEs equal attention over all keys at once.
  std::mt19937 rng(8);
  ThreadPool pool(2);
  const int64_t n = 40, n_head = 4, n_kv_head = 2, hd = 16;
  const auto q = random_vector(size_t(n * n_head * hd), rng, 2.0f);
  const auto k = random_vector(size_t(n * n_kv_head * hd), rng, 2.0f);
  const auto v = random_vector(size_t(n * n_kv_head * hd), rng);
  for (int64_t split : {1, 17, 39}) {
    const int64_t n_edge = n - split;
    const float* q_edge = q.data() + split * n_head * hd;
    const float scale = 0.25f;
    std::vector<float> mono(size_t(n_edge * n_head * hd)), mono_lse(size_t(n_edge * n_head));
    kernels::attention({q_edge, n_edge, split, k.data(), v.data(), n, 0, n_head, n_kv_head, hd,
                        scale, 0, mono.data(), mono_lse.data()},
                       pool);
    std::vector<float> cloud(mono.size()), cloud_lse(mono_lse.size());
    std::vector<float> edge(mono.size()), edge_lse(mono_lse.size());
    kernels::attention({q_edge, n_edge, split, k.data(), v.data(), split, 0, n_head, n_kv_head, hd,
                        scale, 0, cloud.data(), cloud_lse.data()},
                       pool);
    kernels::attention({q_edge, n_edge, split, k.data() + split * n_kv_head * hd,
                        v.data() + split * n_kv_head * hd, n_edge, split, n_head, n_kv_head, hd,
                        scale, 0, edge.data(), edge_lse.data()},
                       pool);
    kernels::merge_attention(cloud.data(), cloud_lse.data(), edge.data(), edge_lse.data(),
                             n_edge * n_head, hd);
    for (size_t i = 0; i < mono.size(); ++i) EXPECT_NEAR(cloud[i], mono[i], 2e-6) << split;
    for (size_t i = 0; i < mono_lse.size(); ++i) EXPECT_NEAR(cloud_lse[i], mono_lse[i], 2e-5);
  }
}

TEST(Kernels, MergeWithAnEmptySegmentIsIdentity) {
  std::vector<float> a = {1, 2}, la = {0.5f};
  const std::vector<float> b = {9, 9};
  const std::vector<float> lb = {-std::numeric_limits<float>::infinity()};
  kernels::merge_attention(a.data(), la.data(), b.data(), lb.data(), 1, 2);
  EXPECT_EQ(a, (std::vector<float>{1, 2}));
  EXPECT_EQ(la[0], 0.5f);
  std::vector<float> e = {0, 0}, le = {-std::numeric_limits<float>::infinity()};
  const std::vector<float> c = {3, 4}, lc = {1.5f};
  kernels::merge_attention(e.data(), le.data(), c.data(), lc.data(), 1, 2);
  EXPECT_EQ(e, c);
  EXPECT_EQ(le[0], 1.5f);
}

}  // namespace
}  // namespace ep
