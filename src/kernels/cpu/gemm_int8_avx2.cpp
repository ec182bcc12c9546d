// AVX2 prefill GEMM for Q8_0 and Q4_0 weights against activations quantised to 8 bits per
// 32-element block (the "fast" precision on CPUs without AVX-512 VNNI). Compiled for AVX2 + FMA +
// F16C by the target region below, not by global flags.
//
// y[t][r] = Σ_b dw[r][b] · dx[t][b] · Σ_j w[r][b][j] · q[t][b][j], the inner sums exact in int32.
//
// AVX2's byte dot product (vpmaddubsw) saturates at int16 for Q8_0 weights against 8-bit
// activations, so both sides are widened to int16 and multiplied with vpmaddwd (two products per
// int32 lane, exact; a stored Q8_0 weight of -128 included). Weights: a panel of 16 rows is
// unpacked to int16 (Q4_0: nibble − 8) row by row, then transposed (8 × 8 int32 transposes) so that
// one 32-byte vector holds 2 consecutive columns of 8 rows: int32 lane i of vpmaddwd(broadcast(2
// activations of one token), that vector) accumulates row i over those 2 columns, 16 steps per
// block. Activations are stored as int16 (QuantizedGemm::activation_bytes = 2). After each block
// the int32 sums of a register tile of 6 tokens × 16 rows (12 accumulators) are converted and
// scaled by dw (per lane) · dx (per token) into f32 sums kept in L1.
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

namespace ep::kernels::detail::int8_avx2_gemm {
namespace {

constexpr int NR = 16;  // weight rows per panel: two vectors of 8 int32 lanes
constexpr int MR = 4;   // tokens per register tile: 8 int32 accumulators, 2 weight vectors
constexpr int64_t kStepBytes = 2 * 32;            // 2 columns × 16 rows × 2 bytes
constexpr int64_t kBlockBytes = 16 * kStepBytes;  // 16 steps per 32-column block

// Packed panel: for block b, q[b * kBlockBytes + g * 64 + h * 32 + i * 4 + j * 2] is column 2g + j
// of row 8h + i (int16); d[b * 16 + r] its scale.
struct Panel {
  uint8_t* q;
  float* d;
};

// Packed panel plus the unpacked rows it is built from (NR × nb · 32 int16).
int64_t panel_bytes(int64_t nb) {
  return nb * (kBlockBytes + NR * 4 + NR * 64) + 64;
}

Panel panel_at(uint8_t* base, int64_t nb) {
  auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + 63) & ~uintptr_t(63));
  return {a, reinterpret_cast<float*>(a + nb * kBlockBytes)};
}

// q as int16 (little-endian, two bytes per value), d per block: rounding as the other 8-bit paths.
void quantize(const float* x, int64_t k, int64_t t0, int64_t t1, QuantizedBatch& out) {
  const int64_t nb = k / 32;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t t = t0; t < t1; ++t) {
    const float* xt = x + t * k;
    uint8_t* q = out.q.data() + t * k * 2;
    float* d = out.d.data() + t * nb;
    for (int64_t b = 0; b < nb; ++b) {
      __m256 v[4];
      __m256 amax = _mm256_setzero_ps();
      for (int i = 0; i < 4; ++i) {
        v[i] = _mm256_loadu_ps(xt + b * 32 + 8 * i);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
      }
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
      const float m = _mm_cvtss_f32(m4);
      d[b] = m / 127.0f;
      const __m256 id = _mm256_set1_ps(m != 0.0f ? 127.0f / m : 0.0f);
      for (int i = 0; i < 4; i += 2) {
        const __m256i q32a = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id));
        const __m256i q32b = _mm256_cvtps_epi32(_mm256_mul_ps(v[i + 1], id));
        // packs works per 128-bit lane: restore the element order with one qword permute.
        const __m256i q16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q32a, q32b), 0xd8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + (b * 32 + 8 * i) * 2), q16);
      }
    }
  }
}

// Row's nb blocks as int16 into out[nb * 32] (64 bytes per block), their f16 scales into d16.
template <DType T>
void unpack_row(const void* row, int64_t nb, uint8_t* out, uint16_t* d16, int64_t d_stride) {
  for (int64_t b = 0; b < nb; ++b) {
    // Mapped file pages of 4 KiB stop the hardware prefetchers: fetch ahead.
    _mm_prefetch(static_cast<const char*>(row) + b * int64_t(T == DType::Q8_0 ? 34 : 18) + 3072,
                 _MM_HINT_T0);
    __m256i lo, hi;  // elements 0-15 and 16-31 as int16
    if constexpr (T == DType::Q8_0) {
      const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(row)[b];
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs));
      lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));
      hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));
      d16[b * d_stride] = blk.d;
    } else {
      const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(row)[b];
      const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs));
      const __m128i eight = _mm_set1_epi8(8), low4 = _mm_set1_epi8(0x0f);
      lo = _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_and_si128(qs, low4), eight));
      hi = _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low4), eight));
      d16[b * d_stride] = blk.d;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 64), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 64 + 32), hi);
  }
}

// Rows r[0..8) (8 int32 each) to columns c[0..8): c[j] lane i = r[i] lane j.
void transpose8_epi32(const __m256i r[8], __m256i c[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    c[j] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20);
    c[j + 4] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
  }
}

// Packs rows [r0, r0 + nr) (nr ≤ 16; missing rows are zeros) of w into p. Each row is first
// unpacked whole into `rows` (reading row by row keeps the weight stream sequential for the
// prefetchers); the transposes then work from cache.
template <DType T>
void pack(const MatrixView& w, int64_t r0, int nr, int64_t nb, const Panel& p, uint8_t* rows) {
  const int64_t ld = nb * 64;
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
  for (int64_t b = 0; b < nb; ++b) {
    for (int h = 0; h < 2; ++h) {
      for (int half = 0; half < 2; ++half) {  // column pairs 0-7, 8-15 of the block
        __m256i r[8], c[8];
        for (int i = 0; i < 8; ++i) {
          r[i] = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(rows + (h * 8 + i) * ld + b * 64 + half * 32));
        }
        transpose8_epi32(r, c);
        for (int g = 0; g < 8; ++g) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(p.q + b * kBlockBytes +
                                                        (half * 8 + g) * kStepBytes + h * 32),
                             c[g]);
        }
      }
    }
  }
}

// M tokens (x rows ldx bytes apart, scales ldd apart) × 16 rows of the packed panel, nb blocks;
// writes nr ≤ 16 columns of y (rows ldy apart).
template <int M>
void micro(const uint8_t* x, int64_t ldx, const float* xd, int64_t ldd, const Panel& p, int64_t nb,
           float* y, int64_t ldy, int nr) {
  alignas(32) float acc[M][NR] = {};
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* wb = p.q + b * kBlockBytes;
    __m256i s0[M], s1[M];
    for (int m = 0; m < M; ++m) s0[m] = s1[m] = _mm256_setzero_si256();
    const uint8_t* xb = x + b * 64;
    for (int g = 0; g < 16; ++g) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + g * kStepBytes));
      const __m256i w1 =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + g * kStepBytes + 32));
      for (int m = 0; m < M; ++m) {
        int32_t a2;
        std::memcpy(&a2, xb + m * ldx + g * 4, 4);
        const __m256i a = _mm256_set1_epi32(a2);
        s0[m] = _mm256_add_epi32(s0[m], _mm256_madd_epi16(a, w0));
        s1[m] = _mm256_add_epi32(s1[m], _mm256_madd_epi16(a, w1));
      }
    }
    const __m256 d0 = _mm256_load_ps(p.d + b * NR), d1 = _mm256_load_ps(p.d + b * NR + 8);
    for (int m = 0; m < M; ++m) {
      const __m256 dx = _mm256_set1_ps(xd[m * ldd + b]);
      _mm256_store_ps(acc[m], _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0[m]), _mm256_mul_ps(d0, dx),
                                              _mm256_load_ps(acc[m])));
      _mm256_store_ps(acc[m] + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1[m]), _mm256_mul_ps(d1, dx),
                                                  _mm256_load_ps(acc[m] + 8)));
    }
  }
  for (int m = 0; m < M; ++m) std::copy_n(acc[m], nr, y + m * ldy);
}

using MicroFn = void (*)(const uint8_t*, int64_t, const float*, int64_t, const Panel&, int64_t,
                         float*, int64_t, int);

template <int... I>
constexpr auto make_micro_table(std::integer_sequence<int, I...>) {
  return std::array<MicroFn, sizeof...(I)>{&micro<I + 1>...};
}
constexpr auto kMicro = make_micro_table(std::make_integer_sequence<int, MR>{});

template <DType T>
void gemm_t(const MatrixView& w, const QuantizedBatch& x, float* y, int64_t p0, int64_t p1,
            std::vector<uint8_t>& scratch) {
  const int64_t K = w.cols, R = w.rows, nb = K / 32, n_tok = x.n_tok;
  scratch.resize(size_t(panel_bytes(nb)));
  const Panel p = panel_at(scratch.data(), nb);
  uint8_t* rows = reinterpret_cast<uint8_t*>(p.d + nb * NR);
  for (int64_t pi = p0; pi < p1; ++pi) {
    const int64_t r0 = pi * NR;
    const int nr = int(std::min<int64_t>(NR, R - r0));
    pack<T>(w, r0, nr, nb, p, rows);
    for (int64_t t0 = 0; t0 < n_tok; t0 += MR) {
      const int mr = int(std::min<int64_t>(MR, n_tok - t0));
      kMicro[size_t(mr - 1)](x.q.data() + t0 * K * 2, K * 2, x.d.data() + t0 * nb, nb, p, nb,
                             y + t0 * R + r0, R, nr);
    }
  }
}

void gemm(const MatrixView& w, const QuantizedBatch& x, float* y, int64_t p0, int64_t p1,
          std::vector<uint8_t>& scratch) {
  if (w.type == DType::Q4_0)
    gemm_t<DType::Q4_0>(w, x, y, p0, p1, scratch);
  else
    gemm_t<DType::Q8_0>(w, x, y, p0, p1, scratch);
}

}  // namespace
}  // namespace ep::kernels::detail::int8_avx2_gemm

EP_TARGET_REGION_END

namespace ep::kernels::detail {

const QuantizedGemm& quantized_gemm_avx2() {
  static const QuantizedGemm k{&int8_avx2_gemm::quantize, &int8_avx2_gemm::gemm, int8_avx2_gemm::NR,
                               2};
  return k;
}

}  // namespace ep::kernels::detail
