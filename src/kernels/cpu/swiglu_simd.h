// Internal: SwiGLU, silu(g) · u, over the lane types of simd_f32_avx2.h / simd_f32_avx512.h with
// the vectorised exp (the scalar loop spends its time in expf, ~4% of a prefill). Include only
// inside the target region of the lane type it is used with.
#pragma once

#include "kernels/cpu/exp_simd.h"

#include <cstdint>

namespace ep::kernels::detail {
namespace {

template <class S>
inline typename S::V silu_times(typename S::V g, typename S::V u) {
  const typename S::V e = exp_clamped<S>(S::sub(S::zero(), g));
  return S::mul(S::div(g, S::add(S::set1(1.0f), e)), u);
}

template <class S>
void swiglu_lanes(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + S::W <= n; i += S::W)
    S::storeu(out + i, silu_times<S>(S::loadu(gate + i), S::loadu(up + i)));
  if (i < n) {
    const int rest = int(n - i);
    S::storeu_first(
        out + i, silu_times<S>(S::loadu_first(gate + i, rest), S::loadu_first(up + i, rest)), rest);
  }
}

}  // namespace
}  // namespace ep::kernels::detail
