// AVX-512 decode kernel for F16 weights against activations rounded to F16 (the "fast" precision,
// as llama.cpp computes F16 weights). The product of two halves is exact in f32, so the only
// difference from the exact path is the rounding of x (relative 2^-11 per element) and the
// summation order.
//
// Why not f32 activations: a decode step is memory-bound, yet the f32 activation loads (twice the
// weight bytes, from L1 or L2) slow the weight stream. bench/decode_stream.cpp ("half": the 88
// TinyLlama F16 decode products through the pool, both kernels alternated) on the Zen 5 edge VM:
// 1.5-10% more GB/s with half activations, depending on the minute's bandwidth
// (docs/performance.md).
// Compiled for the target below, not by global flags; matmul.cpp calls it only when the CPU has
// AVX-512 F/BW/VL.
#include "core/half.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/stream_prefetch.h"
#include "kernels/cpu/target_region.h"

#include <cstdint>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx512f,avx512bw,avx512vl,avx2,fma,f16c")

namespace ep::kernels::detail::half_avx512 {
namespace {

void convert(const float* x, int64_t n, HalfActivations& out) {
  out.n = n;
  out.h.resize(size_t(n + 32));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_store_si256(reinterpret_cast<__m256i*>(&out.h[size_t(i)]), h);
  }
  for (; i < n; ++i) out.h[size_t(i)] = f32_to_f16(x[i]);
}

inline __m512 load_half(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// dot(row, x) over n columns: 32 per step in two chains, four chains in all, then the tail
// (n mod 32) with masked loads that never touch memory past the row.
float dot_row(const uint16_t* w, const uint16_t* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t c = 0;
  for (; c + 64 <= n; c += 64) {
    prefetch_stream(w + c, 128);
    a0 = _mm512_fmadd_ps(load_half(w + c), load_half(x + c), a0);
    a1 = _mm512_fmadd_ps(load_half(w + c + 16), load_half(x + c + 16), a1);
    a2 = _mm512_fmadd_ps(load_half(w + c + 32), load_half(x + c + 32), a2);
    a3 = _mm512_fmadd_ps(load_half(w + c + 48), load_half(x + c + 48), a3);
  }
  for (; c + 16 <= n; c += 16) a0 = _mm512_fmadd_ps(load_half(w + c), load_half(x + c), a0);
  if (c < n) {
    const __mmask16 m = __mmask16((1u << (n - c)) - 1u);
    const __m512 wt = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + c));
    const __m512 xt = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + c));
    a1 = _mm512_fmadd_ps(wt, xt, a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

void matvec(const MatrixView& w, const HalfActivations& x, float* y, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    y[r] = dot_row(static_cast<const uint16_t*>(w.row(r)), x.h.data(), w.cols);
}

}  // namespace
}  // namespace ep::kernels::detail::half_avx512

EP_TARGET_REGION_END

namespace ep::kernels::detail {

const HalfKernels& half_kernels_avx512() {
  static const HalfKernels k{&half_avx512::convert, &half_avx512::matvec};
  return k;
}

}  // namespace ep::kernels::detail
