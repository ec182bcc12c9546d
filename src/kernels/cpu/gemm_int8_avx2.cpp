// AVX2 prefill GEMMs for Q8_0 and Q4_0 weights against activations quantised to 8 bits per
// 32-element block (the "fast" precision on CPUs without AVX-512 VNNI). Compiled for AVX2 + FMA +
// F16C by the target region below, not by global flags.
//
// y[t][r] = Σ_b dw[r][b] · dx[t][b] · Σ_j w[r][b][j] · q[t][b][j], the inner sums exact in int32.
// A panel of 16 weight rows is unpacked row by row (a sequential, prefetched stream) and transposed
// with 8 × 8 int32 transposes so that one 32-byte vector holds consecutive columns of 8 rows; int32
// lane i of a product with a broadcast of one token's activations then accumulates row i. After
// each block the int32 sums of a 4-token × 16-row register tile are converted and scaled by dw (per
// lane) · dx (per token) into f32 sums kept in L1.
//   Q8_0: vpmaddubsw (u8 × s8 into saturating int16 pairs) takes Q8_0 weights only with the sign
//         trick of the decode kernel (one more operation per product, and pairs up to 32512 that
//         must be widened at every step), so both sides are widened to int16 instead and
//         multiplied with vpmaddwd (two columns per int32 lane, exact; a stored -128 included).
//         Activations: int16.
//   Q4_0: the nibbles (0..15) are vpmaddubsw's unsigned operand against signed 8-bit activations
//         (four columns per int32 lane after vpmaddwd with ones): a pair sums to at most
//         2 · 15 · 127 = 3810, so the int16 pairs of a whole block (8 steps, 30480) add without
//         overflow and are widened once per block; Σ (nibble − 8)·q = Σ nibble·q − 8·Σ q, with
//         Σ q per token and block stored at quantisation time. Activations: int8 and block sums.
#include "core/dtype.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/target_region.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx2,fma,f16c")

#include "kernels/cpu/quantize_avx2.h"
#include "kernels/cpu/transpose_avx2.h"

namespace ep::kernels::detail::int8_avx2_gemm {
namespace {

constexpr int NR = 16;  // weight rows per panel: two vectors of 8 int32 lanes
constexpr int MR = 4;   // tokens per register tile: 8 accumulators, 2 weight vectors
// One packed block: 32 columns × 16 rows, 2 bytes per weight for Q8_0 (16 steps of 2 columns),
// 1 for Q4_0 (8 steps of 4 columns); one step is 64 bytes either way.
constexpr int64_t kStepBytes = 64;
template <DType T>
constexpr int64_t kBlockBytes = T == DType::Q8_0 ? 16 * kStepBytes : 8 * kStepBytes;

// Packed panel: for block b, q[b * kBlockBytes + g * 64 + h * 32 + i * 4 + ...] holds step g of
// row 8h + i (Q8_0: columns 2g, 2g + 1 as int16; Q4_0: columns 4g..4g + 3 as nibble bytes);
// d[b * 16 + r] its scale.
struct Panel {
  uint8_t* q;
  float* d;
};

// Packed panel plus the unpacked rows it is built from (NR rows of kBlockBytes / NR per block).
template <DType T>
int64_t panel_bytes(int64_t nb) {
  return nb * (kBlockBytes<T> + NR * 4 + kBlockBytes<T>)+64;
}

template <DType T>
Panel panel_at(uint8_t* base, int64_t nb) {
  auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + 63) & ~uintptr_t(63));
  return {a, reinterpret_cast<float*>(a + nb * kBlockBytes<T>)};
}

// Q8_0's activations: q as int16 (little-endian, two bytes per value), d per block.
void quantize_int16(const float* x, int64_t k, int64_t t0, int64_t t1, QuantizedBatch& out) {
  const int64_t nb = k / 32;
  for (int64_t t = t0; t < t1; ++t) {
    uint8_t* q = out.q.data() + t * k * 2;
    for (int64_t b = 0; b < nb; ++b) {
      __m256i q32[4];
      out.d[size_t(t * nb + b)] = quantize_block_avx2(x + t * k + b * 32, q32);
      for (int i = 0; i < 4; i += 2) {
        // packs works per 128-bit lane: restore the element order with one qword permute.
        const __m256i q16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q32[i], q32[i + 1]), 0xd8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + (b * 32 + 8 * i) * 2), q16);
      }
    }
  }
}

// Q4_0's activations: q as signed bytes, d and Σ q per block.
void quantize_int8(const float* x, int64_t k, int64_t t0, int64_t t1, QuantizedBatch& out) {
  const int64_t nb = k / 32;
  for (int64_t t = t0; t < t1; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      __m256i q32[4];
      out.d[size_t(t * nb + b)] = quantize_block_avx2(x + t * k + b * 32, q32);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q.data() + t * k + b * 32),
                          pack_block_avx2(q32));
      out.sums[size_t(t * nb + b)] = block_sum_avx2(q32);
    }
  }
}

// Row's nb blocks into out (kBlockBytes<T> / 16 bytes per block: Q8_0 as int16, Q4_0 as nibble
// bytes 0..15 in element order), their f16 scales into d16 (d_stride apart).
template <DType T>
void unpack_row(const void* row, int64_t nb, uint8_t* out, uint16_t* d16, int64_t d_stride) {
  for (int64_t b = 0; b < nb; ++b) {
    // Mapped file pages of 4 KiB stop the hardware prefetchers: fetch ahead.
    _mm_prefetch(static_cast<const char*>(row) + b * int64_t(T == DType::Q8_0 ? 34 : 18) + 3072,
                 _MM_HINT_T0);
    if constexpr (T == DType::Q8_0) {
      const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(row)[b];
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 64),
                          _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 64 + 32),
                          _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)));
      d16[b * d_stride] = blk.d;
    } else {
      const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(row)[b];
      const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs));
      const __m128i low4 = _mm_set1_epi8(0x0f);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + b * 32), _mm_and_si128(qs, low4));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + b * 32 + 16),
                       _mm_and_si128(_mm_srli_epi16(qs, 4), low4));
      d16[b * d_stride] = blk.d;
    }
  }
}

// Packs rows [r0, r0 + nr) (nr ≤ 16; missing rows are zeros) of w into p. Each row is first
// unpacked whole into `rows` (reading row by row keeps the weight stream sequential for the
// prefetchers); the transposes then work from cache.
template <DType T>
void pack(const MatrixView& w, int64_t r0, int nr, int64_t nb, const Panel& p, uint8_t* rows) {
  constexpr int64_t kRowBlock = kBlockBytes<T> / NR;  // bytes of one row's block, unpacked
  const int64_t ld = nb * kRowBlock;
  // The f16 scales are parked in the first half of each block's 16 floats, expanded below.
  uint16_t* d16 = reinterpret_cast<uint16_t*>(p.d);
  for (int r = 0; r < NR; ++r) {
    if (r < nr) {
      unpack_row<T>(w.row(r0 + r), nb, rows + r * ld, d16 + r, 2 * NR);
    } else {
      std::memset(rows + r * ld, 0, size_t(ld));
      for (int64_t b = 0; b < nb; ++b) d16[b * 2 * NR + r] = 0;
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    float* d = p.d + b * NR;
    const __m128i h0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d));
    const __m128i h1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d) + 1);
    _mm256_storeu_ps(d, _mm256_cvtph_ps(h0));
    _mm256_storeu_ps(d + 8, _mm256_cvtph_ps(h1));
  }
  // Each 32-byte piece of 8 rows' blocks is 8 × 8 int32 (a step's columns per int32): transposed,
  // piece k's column g is step 8k + g.
  for (int64_t b = 0; b < nb; ++b) {
    for (int h = 0; h < 2; ++h) {
      for (int64_t k = 0; k < kRowBlock / 32; ++k) {
        __m256i r[8], c[8];
        for (int i = 0; i < 8; ++i) {
          r[i] = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(rows + (h * 8 + i) * ld + b * kRowBlock + k * 32));
        }
        transpose8_epi32(r, c);
        for (int g = 0; g < 8; ++g) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(p.q + b * kBlockBytes<T> +
                                                        (k * 8 + g) * kStepBytes + h * 32),
                             c[g]);
        }
      }
    }
  }
}

// The f32 tile after a block: acc[m] += (s0[m], s1[m]) · dw · dx[m].
template <int M>
inline void scale_into(const __m256i s0[M], const __m256i s1[M], const float* dw, const float* xd,
                       int64_t ldd, int64_t b, float (*acc)[NR]) {
  const __m256 d0 = _mm256_load_ps(dw), d1 = _mm256_load_ps(dw + 8);
  for (int m = 0; m < M; ++m) {
    const __m256 dx = _mm256_set1_ps(xd[m * ldd + b]);
    _mm256_store_ps(acc[m], _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0[m]), _mm256_mul_ps(d0, dx),
                                            _mm256_load_ps(acc[m])));
    _mm256_store_ps(acc[m] + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1[m]), _mm256_mul_ps(d1, dx),
                                                _mm256_load_ps(acc[m] + 8)));
  }
}

// M tokens × 16 rows of a packed panel, nb blocks: tokens [t0, t0 + M) of xb (Q8_0: int16
// activations, two columns per step; Q4_0: signed bytes with block sums, four columns per step);
// writes nr ≤ 16 columns of y (rows ldy apart).
template <DType T, int M>
void micro(const QuantizedBatch& xb, int64_t t0, const Panel& p, int64_t nb, float* y, int64_t ldy,
           int nr) {
  constexpr int64_t kValueBytes = T == DType::Q8_0 ? 2 : 1;  // bytes per activation value
  constexpr int kSteps = int(kBlockBytes<T> / kStepBytes);
  const int64_t ldx = xb.k * kValueBytes, ldd = nb;
  const uint8_t* x = xb.q.data() + t0 * ldx;
  const float* xd = xb.d.data() + t0 * nb;
  alignas(32) float acc[M][NR] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = p.q + b * kBlockBytes<T>;
    const uint8_t* xb_block = x + b * 32 * kValueBytes;
    __m256i s0[M], s1[M];  // int32 sums (Q8_0), int16 pairs over the block (Q4_0)
    for (int m = 0; m < M; ++m) s0[m] = s1[m] = _mm256_setzero_si256();
    for (int g = 0; g < kSteps; ++g) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + g * kStepBytes));
      const __m256i w1 =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + g * kStepBytes + 32));
      for (int m = 0; m < M; ++m) {
        int32_t a4;  // one step's activations of token m (2 int16 or 4 bytes)
        std::memcpy(&a4, xb_block + m * ldx + g * 4, 4);
        const __m256i a = _mm256_set1_epi32(a4);
        if constexpr (T == DType::Q8_0) {
          s0[m] = _mm256_add_epi32(s0[m], _mm256_madd_epi16(a, w0));
          s1[m] = _mm256_add_epi32(s1[m], _mm256_madd_epi16(a, w1));
        } else {
          s0[m] = _mm256_add_epi16(s0[m], _mm256_maddubs_epi16(w0, a));
          s1[m] = _mm256_add_epi16(s1[m], _mm256_maddubs_epi16(w1, a));
        }
      }
    }
    if constexpr (T == DType::Q4_0) {  // widen, and make the nibbles signed: - 8 · Σ q
      const __m256i ones = _mm256_set1_epi16(1);
      for (int m = 0; m < M; ++m) {
        const __m256i corr = _mm256_set1_epi32(-8 * xb.sums[size_t((t0 + m) * nb + b)]);
        s0[m] = _mm256_add_epi32(_mm256_madd_epi16(s0[m], ones), corr);
        s1[m] = _mm256_add_epi32(_mm256_madd_epi16(s1[m], ones), corr);
      }
    }
    scale_into<M>(s0, s1, p.d + b * NR, xd, ldd, b, acc);
  }
  for (int m = 0; m < M; ++m) std::copy_n(acc[m], nr, y + m * ldy);
}

using MicroFn = void (*)(const QuantizedBatch&, int64_t, const Panel&, int64_t, float*, int64_t,
                         int);

template <DType T, int... I>
constexpr auto make_micro_table(std::integer_sequence<int, I...>) {
  return std::array<MicroFn, sizeof...(I)>{&micro<T, I + 1>...};
}

template <DType T>
void gemm(const MatrixView& w, const QuantizedBatch& x, float* y, int64_t p0, int64_t p1,
          std::vector<uint8_t>& scratch) {
  static constexpr auto kMicro = make_micro_table<T>(std::make_integer_sequence<int, MR>{});
  const int64_t R = w.rows, nb = w.cols / 32, n_tok = x.n_tok;
  scratch.resize(size_t(panel_bytes<T>(nb)));
  const Panel p = panel_at<T>(scratch.data(), nb);
  uint8_t* rows = reinterpret_cast<uint8_t*>(p.d + nb * NR);
  for (int64_t pi = p0; pi < p1; ++pi) {
    const int64_t r0 = pi * NR;
    const int nr = int(std::min<int64_t>(NR, R - r0));
    pack<T>(w, r0, nr, nb, p, rows);
    for (int64_t t0 = 0; t0 < n_tok; t0 += MR) {
      const int mr = int(std::min<int64_t>(MR, n_tok - t0));
      kMicro[size_t(mr - 1)](x, t0, p, nb, y + t0 * R + r0, R, nr);
    }
  }
}

}  // namespace
}  // namespace ep::kernels::detail::int8_avx2_gemm

EP_TARGET_REGION_END

namespace ep::kernels::detail {

const QuantizedGemm& quantized_gemm_avx2(DType w) {
  using namespace int8_avx2_gemm;
  static const QuantizedGemm q8{&quantize_int16, &gemm<DType::Q8_0>, NR, 2};
  static const QuantizedGemm q4{&quantize_int8, &gemm<DType::Q4_0>, NR, 1};
  return w == DType::Q4_0 ? q4 : q8;
}

}  // namespace ep::kernels::detail
