// AVX-512 VNNI prefill GEMM for Q8_0 and Q4_0 weights against activations quantised to 8 bits per
// 32-element block (the "fast" precision). Compiled for that target by the target region below, not
// by global flags; matmul.cpp calls it only when the CPU has AVX-512 F/BW/VL/DQ and VNNI.
//
// y[t][r] = Σ_b dw[r][b] · dx[t][b] · Σ_j w[r][b][j] · q[t][b][j], the inner sums exact in int32.
//
// Weights: a panel of 32 rows is unpacked to signed bytes (Q4_0: nibble − 8) and transposed so
// that one 64-byte vector holds 4 consecutive columns of 16 rows: int32 lane i of vpdpbusd then
// accumulates row i's dot product over those 4 columns, and 8 such steps cover one block. The
// unsigned operand is the activation + 128 (broadcast, 4 bytes of one token), so the lane sums
// are Σ w·(q + 128); each row-block's −128·Σ w is precomputed at packing time and seeds the
// accumulator. After each block the int32 sums are converted and scaled by dw (per lane) · dx
// (per token) into f32 accumulators: a register tile of MR tokens × 32 rows.
#include "core/dtype.h"
#include "core/half.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/target_region.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")

#include "kernels/cpu/quantize_avx512.h"
#include "kernels/cpu/transpose_avx512.h"

namespace ep::kernels::detail::vnni_gemm {
namespace {

constexpr int NR = 32;  // weight rows per panel: two vectors of 16 int32 lanes
constexpr int MR = 6;   // tokens per register tile: 12 int32 + 12 f32 accumulators
constexpr int64_t kBlockBytes = 8 * NR * 4;  // one packed block column: 8 steps × 32 rows × 4 bytes

// Packed panel: for block b, q[b * kBlockBytes + g * 128 + h * 64 + i * 4 + j] is column 4g + j
// of row 16h + i; d[b * 32 + r] its scale, corr[b * 32 + r] = −128 · Σ_j w[r][b][j].
struct Panel {
  int8_t* q;
  float* d;
  int32_t* corr;
};

// Packed panel plus the unpacked rows it is built from.
int64_t panel_bytes(int64_t nb) {
  const int64_t nb2 = (nb + 1) & ~int64_t(1);  // packed two blocks at a time
  return nb2 * (kBlockBytes + NR * 8 + NR * 32) + 64;
}

Panel panel_at(uint8_t* base, int64_t nb) {
  const int64_t nb2 = (nb + 1) & ~int64_t(1);
  auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + 63) & ~uintptr_t(63));
  return {reinterpret_cast<int8_t*>(a), reinterpret_cast<float*>(a + nb2 * kBlockBytes),
          reinterpret_cast<int32_t*>(a + nb2 * (kBlockBytes + NR * 4))};
}

void quantize(const float* x, int64_t k, int64_t t0, int64_t t1, QuantizedBatch& out) {
  const int64_t nb = k / 32;
  for (int64_t t = t0; t < t1; ++t) {
    const float* xt = x + t * k;
    uint8_t* q = out.q.data() + t * k;
    float* d = out.d.data() + t * nb;
    for (int64_t b = 0; b < nb; ++b) {
      __m512i q0, q1;
      d[b] = quantize_block_avx512(xt + b * 32, q0, q1);
      // q in [-127, 127]; flipping the sign bit stores q + 128 as an unsigned byte.
      const __m128i bias = _mm_set1_epi8(int8_t(0x80));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32),
                       _mm_xor_si128(_mm512_cvtepi32_epi8(q0), bias));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32 + 16),
                       _mm_xor_si128(_mm512_cvtepi32_epi8(q1), bias));
    }
  }
}

// Signed bytes of row's nb blocks into out[nb * 32].
template <DType T>
void unpack_row(const void* row, int64_t nb, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b) {
    // The weights are mapped 4 KiB file pages, where the hardware prefetchers stop: fetch ahead.
    _mm_prefetch(static_cast<const char*>(row) + b * int64_t(T == DType::Q8_0 ? 34 : 18) + 3072,
                 _MM_HINT_T0);
    __m256i v;
    if constexpr (T == DType::Q8_0) {
      v = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(static_cast<const BlockQ8_0*>(row)[b].qs));
    } else {
      const __m128i qs = _mm_loadu_si128(
          reinterpret_cast<const __m128i*>(static_cast<const BlockQ4_0*>(row)[b].qs));
      const __m128i lo = _mm_and_si128(qs, _mm_set1_epi8(0x0f));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(qs, 4), _mm_set1_epi8(0x0f));
      v = _mm256_sub_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1),
                          _mm256_set1_epi8(8));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 32), v);
  }
}

template <DType T>
uint16_t block_scale(const void* row, int64_t b) {
  if constexpr (T == DType::Q8_0)
    return static_cast<const BlockQ8_0*>(row)[b].d;
  else
    return static_cast<const BlockQ4_0*>(row)[b].d;
}

// Packs rows [r0, r0 + nr) (nr ≤ 32; missing rows are zeros) of w into p. Each row is first
// unpacked whole into `rows` (NR × nb2 · 32 bytes): reading row by row keeps the weight stream
// sequential for the prefetchers; the transposes then work from cache.
template <DType T>
void pack(const MatrixView& w, int64_t r0, int nr, int64_t nb, const Panel& p, uint8_t* rows) {
  const int64_t nb2 = (nb + 1) & ~int64_t(1), ld = nb2 * 32;
  for (int r = 0; r < NR; ++r) {
    uint8_t* out = rows + r * ld;
    if (r < nr) {
      const void* row = w.row(r0 + r);
      unpack_row<T>(row, nb, out);
      for (int64_t b = 0; b < nb; ++b)
        reinterpret_cast<uint16_t*>(p.d + b * NR)[r] = block_scale<T>(row, b);
    } else {
      std::memset(out, 0, size_t(nb * 32));
      for (int64_t b = 0; b < nb; ++b) reinterpret_cast<uint16_t*>(p.d + b * NR)[r] = 0;
    }
    if (nb < nb2) std::memset(out + nb * 32, 0, 32);
  }
  // The f16 scales were parked in the first half of each block's 32 floats; expand in place,
  // from the top half down.
  for (int64_t b = 0; b < nb; ++b) {
    float* d = p.d + b * NR;
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(d) + 1);
    _mm512_store_ps(d, _mm512_cvtph_ps(lo));
    _mm512_store_ps(d + 16, _mm512_cvtph_ps(hi));
  }
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t b = 0; b < nb; b += 2) {
    for (int h = 0; h < 2; ++h) {
      __m512i cols[16];
      transpose16_epi32(rows + h * 16 * ld + b * 32, ld, cols);
      for (int k = 0; k < 2; ++k) {
        __m512i sum = _mm512_setzero_si512();
        for (int g = 0; g < 8; ++g) {
          _mm512_store_si512(p.q + (b + k) * kBlockBytes + g * 128 + h * 64, cols[k * 8 + g]);
          sum = _mm512_dpbusd_epi32(sum, ones, cols[k * 8 + g]);
        }
        _mm512_store_si512(p.corr + (b + k) * NR + h * 16,
                           _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)));
      }
    }
  }
}

// MR tokens (x rows ldx bytes apart, scales ldd apart) × 32 rows of the packed panel, nb blocks;
// writes nr ≤ 32 columns of y (rows ldy apart).
template <int M>
void micro(const uint8_t* x, int64_t ldx, const float* xd, int64_t ldd, const Panel& p, int64_t nb,
           float* y, int64_t ldy, int nr) {
  __m512 acc0[M], acc1[M];
  for (int m = 0; m < M; ++m) acc0[m] = acc1[m] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const int8_t* wb = p.q + b * kBlockBytes;
    const __m512i c0 = _mm512_load_si512(p.corr + b * NR),
                  c1 = _mm512_load_si512(p.corr + b * NR + 16);
    __m512i s0[M], s1[M];
    for (int m = 0; m < M; ++m) {
      s0[m] = c0;
      s1[m] = c1;
    }
    const uint8_t* xb = x + b * 32;
    for (int g = 0; g < 8; ++g) {
      const __m512i w0 = _mm512_load_si512(wb + g * 128), w1 = _mm512_load_si512(wb + g * 128 + 64);
      for (int m = 0; m < M; ++m) {
        int32_t a4;
        std::memcpy(&a4, xb + m * ldx + g * 4, 4);
        const __m512i a = _mm512_set1_epi32(a4);
        s0[m] = _mm512_dpbusd_epi32(s0[m], a, w0);
        s1[m] = _mm512_dpbusd_epi32(s1[m], a, w1);
      }
    }
    const __m512 d0 = _mm512_load_ps(p.d + b * NR), d1 = _mm512_load_ps(p.d + b * NR + 16);
    for (int m = 0; m < M; ++m) {
      const __m512 dx = _mm512_set1_ps(xd[m * ldd + b]);
      acc0[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0[m]), _mm512_mul_ps(d0, dx), acc0[m]);
      acc1[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1[m]), _mm512_mul_ps(d1, dx), acc1[m]);
    }
  }
  const int n0 = std::min(nr, 16), n1 = nr - n0;
  const __mmask16 k0 = __mmask16((1u << n0) - 1u), k1 = __mmask16((1u << std::max(n1, 0)) - 1u);
  for (int m = 0; m < M; ++m) {
    _mm512_mask_storeu_ps(y + m * ldy, k0, acc0[m]);
    if (n1 > 0) _mm512_mask_storeu_ps(y + m * ldy + 16, k1, acc1[m]);
  }
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
  for (int64_t pi = p0; pi < p1; ++pi) {
    const int64_t r0 = pi * NR;
    const int nr = int(std::min<int64_t>(NR, R - r0));
    pack<T>(w, r0, nr, nb, p, reinterpret_cast<uint8_t*>(p.corr + ((nb + 1) & ~int64_t(1)) * NR));
    for (int64_t t0 = 0; t0 < n_tok; t0 += MR) {
      const int mr = int(std::min<int64_t>(MR, n_tok - t0));
      kMicro[size_t(mr - 1)](x.q.data() + t0 * K, K, x.d.data() + t0 * nb, nb, p, nb,
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
}  // namespace ep::kernels::detail::vnni_gemm

EP_TARGET_REGION_END

namespace ep::kernels::detail {

const QuantizedGemm& quantized_gemm_vnni() {
  static const QuantizedGemm k{&vnni_gemm::quantize, &vnni_gemm::gemm, vnni_gemm::NR, 1};
  return k;
}

}  // namespace ep::kernels::detail
