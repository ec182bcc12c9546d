// AVX-512 BF16 prefill GEMM for F16 and BF16 weights (the "fast" precision): weights and
// activations rounded to bf16 (8 significant bits) and multiplied with vdpbf16ps, which does two
// multiply-adds per f32 lane, twice the f32 FMA rate. Compiled for that target by the target
// region below; matmul.cpp calls it only on CPUs with AVX-512 F/BW/VL/DQ and BF16.
//
// Weights: a panel of 32 rows × KC columns is converted to bf16 and transposed so that one 64-byte
// vector holds a pair of consecutive columns of 16 rows (int32 lane i = row i's two values); the
// activation pair of one token is broadcast, and a register tile of MR tokens × 32 rows
// accumulates in f32 (products of two bf16 are exact in f32). The activations are converted into
// token tiles, so that a tile's broadcasts read one contiguous run (see matmul_impl.inc for why).
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

EP_TARGET_REGION_BEGIN("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")

#include "kernels/cpu/transpose_avx512.h"

namespace ep::kernels::detail::bf16_gemm {
namespace {

constexpr int NR = 32;       // weight rows per panel: two vectors of 16 lanes
constexpr int MR = 12;       // tokens per register tile: 24 f32 accumulators
constexpr int64_t KC = 256;  // columns per packed slice (multiple of 32): 16 KiB, L1-resident

// 16 f32 → 16 bf16, rounded to nearest even.
inline __m256i to_bf16(__m512 v) {
  return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
}

// Token tiles [tile0, tile1) of x ([n_tok, k] f32) as bf16 pairs (see Bf16Batch): per column
// block, the tile's rows are rounded into a 16-row buffer, and each 16 × 16 square of pairs is
// transposed in registers into 16 runs of the tile's MR tokens.
void convert(const float* x, int64_t k, int64_t tile0, int64_t tile1, Bf16Batch& out) {
  const int64_t k2 = out.k2, n_pad = out.n_pad;
  alignas(64) uint16_t rows[16][KC];
  for (int m = MR; m < 16; ++m) std::fill_n(rows[m], KC, uint16_t(0));  // never stored
  const __mmask16 tile_lanes = __mmask16((1u << MR) - 1u);
  for (int64_t tile = tile0; tile < tile1; ++tile) {
    const int64_t mr = std::min<int64_t>(MR, out.n_tok - tile * MR);
    for (int64_t k0 = 0; k0 < k2; k0 += KC) {
      const int64_t kc2 = std::min(KC, k2 - k0), kp = kc2 / 2;
      for (int64_t m = 0; m < MR; ++m) {
        uint16_t* o = rows[m];
        int64_t c = 0;
        if (m < mr) {
          const float* xt = x + (tile * MR + m) * k + k0;
          const int64_t kc = std::min(KC, k - k0);
          for (; c + 16 <= kc; c += 16)
            _mm256_store_si256(reinterpret_cast<__m256i*>(o + c), to_bf16(_mm512_loadu_ps(xt + c)));
          for (; c < kc; ++c) o[c] = f32_to_bf16(xt[c]);
        }
        for (; c < kc2; ++c) o[c] = 0;  // an odd row's last pair; a partial tile's padding
      }
      uint32_t* dst = out.pairs.data() + k0 / 2 * n_pad + tile * kp * MR;
      int64_t p = 0;
      for (; p + 16 <= kp; p += 16) {
        __m512i cols[16];
        transpose16_epi32(reinterpret_cast<const uint8_t*>(rows[0] + 2 * p), KC * 2, cols);
        for (int j = 0; j < 16; ++j)
          _mm512_mask_storeu_epi32(dst + (p + j) * MR, tile_lanes, cols[j]);
      }
      for (; p < kp; ++p) {
        for (int m = 0; m < MR; ++m) std::memcpy(dst + p * MR + m, rows[m] + 2 * p, 4);
      }
    }
  }
}

// Columns [k0, k0 + kc) of a row as bf16 into out, zero-padded to kc32 (a multiple of 32).
template <DType T>
void row_slice(const void* row, int64_t k0, int64_t kc, int64_t kc32, uint16_t* out) {
  int64_t c = 0;
  if constexpr (dtype_block_elems(T) > 1) {
    // Q3_K, Q4_K, Q5_K, Q6_K: whole super-blocks (k0 and kc are multiples of KC = 256 or end the
    // row) expanded to f32 (exactly), then rounded to bf16.
    alignas(64) float f[KC];
    expand_blocks_avx2(
        T, static_cast<const uint8_t*>(row) + k0 / kSuperBlock * dtype_block_bytes(T), f, kc);
    for (; c + 16 <= kc; c += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), to_bf16(_mm512_load_ps(f + c)));
    for (; c < kc32; ++c) out[c] = 0;
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(row) + k0;
  if constexpr (T == DType::BF16) {
    std::memcpy(out, src, size_t(kc) * 2);
    c = kc;
  } else {
    for (; c + 16 <= kc; c += 16) {
      _mm_prefetch(reinterpret_cast<const char*>(src + c) + 4096, _MM_HINT_T0);
      const __m512 f =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), to_bf16(f));
    }
    for (; c < kc; ++c) out[c] = f32_to_bf16(f16_to_f32(src[c]));
  }
  for (; c < kc32; ++c) out[c] = 0;
}

// Packs rows [r0, r0 + nr) (missing rows zero), columns [k0, k0 + kc) into bp: column pair p of
// row 16h + i at bp[(p * 32 + h * 16 + i) * 2 + {0, 1}]. tmp holds NR × KC bf16.
template <DType T>
void pack(const MatrixView& w, int64_t r0, int nr, int64_t k0, int64_t kc, uint16_t* bp,
          uint16_t* tmp) {
  const int64_t kc32 = (kc + 31) & ~int64_t(31);
  for (int r = 0; r < NR; ++r) {
    if (r < nr)
      row_slice<T>(w.row(r0 + r), k0, kc, kc32, tmp + r * KC);
    else
      std::memset(tmp + r * KC, 0, size_t(kc32) * 2);
  }
  for (int64_t c = 0; c < kc32; c += 32) {
    for (int h = 0; h < 2; ++h) {
      __m512i cols[16];
      transpose16_epi32(reinterpret_cast<const uint8_t*>(tmp + h * 16 * KC + c), KC * 2, cols);
      for (int j = 0; j < 16; ++j) {
        _mm512_store_si512(bp + ((c / 2 + j) * 32 + h * 16) * 2, cols[j]);
      }
    }
  }
}

// M tokens of a packed token tile (kp pairs × MR, the first M of each MR used) × 32 rows of the
// packed slice; adds into (or, if first, writes) nr ≤ 32 columns of y (rows ldy apart).
template <int M>
void micro(const uint32_t* a, const uint16_t* bp, int64_t kp, float* y, int64_t ldy, int nr,
           bool first) {
  __m512 acc0[M], acc1[M];
  EP_UNROLL(16)
  for (int m = 0; m < M; ++m) acc0[m] = acc1[m] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kp; ++p) {
    const __m512bh b0 = reinterpret_cast<__m512bh>(_mm512_load_si512(bp + p * 64));
    const __m512bh b1 = reinterpret_cast<__m512bh>(_mm512_load_si512(bp + p * 64 + 32));
    EP_UNROLL(16)
    for (int m = 0; m < M; ++m) {
      const __m512bh x = reinterpret_cast<__m512bh>(_mm512_set1_epi32(int(a[p * MR + m])));
      acc0[m] = _mm512_dpbf16_ps(acc0[m], x, b0);
      acc1[m] = _mm512_dpbf16_ps(acc1[m], x, b1);
    }
  }
  const int n0 = std::min(nr, 16), n1 = std::max(nr - 16, 0);
  const __mmask16 k0 = __mmask16((1u << n0) - 1u), k1 = __mmask16((1u << n1) - 1u);
  EP_UNROLL(16)
  for (int m = 0; m < M; ++m) {
    float* yr = y + m * ldy;
    if (!first) {
      acc0[m] = _mm512_add_ps(acc0[m], _mm512_maskz_loadu_ps(k0, yr));
      acc1[m] = _mm512_add_ps(acc1[m], _mm512_maskz_loadu_ps(k1, yr + 16));
    }
    _mm512_mask_storeu_ps(yr, k0, acc0[m]);
    _mm512_mask_storeu_ps(yr + 16, k1, acc1[m]);
  }
}

using MicroFn = void (*)(const uint32_t*, const uint16_t*, int64_t, float*, int64_t, int, bool);

template <int... I>
constexpr auto make_micro_table(std::integer_sequence<int, I...>) {
  return std::array<MicroFn, sizeof...(I)>{&micro<I + 1>...};
}
constexpr auto kMicro = make_micro_table(std::make_integer_sequence<int, MR>{});

template <DType T>
void gemm_t(const MatrixView& w, const Bf16Batch& x, float* y, int64_t p0, int64_t p1,
            std::vector<uint8_t>& scratch) {
  const int64_t K = w.cols, R = w.rows, n_tok = x.n_tok, n_pad = x.n_pad;
  // Packed slice (KC / 2 pairs × 32 rows × 2 bf16) and the NR × KC row buffer, 64-byte aligned.
  scratch.resize(size_t(KC * NR * 2 * 2 + 64));
  auto* base = reinterpret_cast<uint16_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) &
                                           ~uintptr_t(63));
  uint16_t* bp = base;
  uint16_t* tmp = base + KC * NR;
  for (int64_t pi = p0; pi < p1; ++pi) {
    const int64_t r0 = pi * NR;
    const int nr = int(std::min<int64_t>(NR, R - r0));
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = std::min(KC, K - k0), kp = (kc + 1) / 2;
      pack<T>(w, r0, nr, k0, kc, bp, tmp);
      for (int64_t t0 = 0; t0 < n_tok; t0 += MR) {
        const int mr = int(std::min<int64_t>(MR, n_tok - t0));
        kMicro[size_t(mr - 1)](x.pairs.data() + k0 / 2 * n_pad + t0 * kp, bp, kp, y + t0 * R + r0,
                               R, nr, k0 == 0);
      }
    }
  }
}

void gemm(const MatrixView& w, const Bf16Batch& x, float* y, int64_t p0, int64_t p1,
          std::vector<uint8_t>& scratch) {
  switch (w.type) {
    case DType::BF16:
      return gemm_t<DType::BF16>(w, x, y, p0, p1, scratch);
    case DType::Q3_K:
      return gemm_t<DType::Q3_K>(w, x, y, p0, p1, scratch);
    case DType::Q4_K:
      return gemm_t<DType::Q4_K>(w, x, y, p0, p1, scratch);
    case DType::Q5_K:
      return gemm_t<DType::Q5_K>(w, x, y, p0, p1, scratch);
    case DType::Q6_K:
      return gemm_t<DType::Q6_K>(w, x, y, p0, p1, scratch);
    default:
      return gemm_t<DType::F16>(w, x, y, p0, p1, scratch);
  }
}

}  // namespace
}  // namespace ep::kernels::detail::bf16_gemm

EP_TARGET_REGION_END

namespace ep::kernels::detail {

const Bf16Gemm& bf16_gemm_avx512() {
  static const Bf16Gemm k{&bf16_gemm::convert, &bf16_gemm::gemm, bf16_gemm::NR, bf16_gemm::MR};
  return k;
}

}  // namespace ep::kernels::detail
