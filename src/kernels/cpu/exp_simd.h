// Internal: a vectorised exp over the lane types of simd_f32_avx2.h / simd_f32_avx512.h (softmax,
// SiLU). Include only inside the target region of the lane type it is used with.
#pragma once

namespace ep::kernels::detail {
namespace {

// exp(x) for x in [-87, 88] (the caller clamps): x = n·ln2 + r, |r| <= ln2/2, e^r by its
// degree-7 Taylor polynomial (relative error < 2e-8 before rounding), times 2^n.
template <class S>
inline typename S::V exp_in_range(typename S::V x) {
  using V = typename S::V;
  const V n = S::round(S::mul(x, S::set1(1.44269504088896341f)));
  V r = S::fnma(n, S::set1(0.693145751953125f), x);  // ln2 in two parts: n·hi is exact
  r = S::fnma(n, S::set1(1.428606765330187045e-06f), r);
  V p = S::set1(1.0f / 5040);
  p = S::fma(p, r, S::set1(1.0f / 720));
  p = S::fma(p, r, S::set1(1.0f / 120));
  p = S::fma(p, r, S::set1(1.0f / 24));
  p = S::fma(p, r, S::set1(1.0f / 6));
  p = S::fma(p, r, S::set1(0.5f));
  p = S::fma(p, r, S::set1(1.0f));
  p = S::fma(p, r, S::set1(1.0f));
  return S::scale_pow2(p, n);
}

// exp(x) for x <= 0 (arguments below -87 give exp(-87), about 1.6e-38).
template <class S>
inline typename S::V exp_nonpositive(typename S::V x) {
  return exp_in_range<S>(S::max(x, S::set1(-87.0f)));
}

// exp(x), x clamped to [-87, 88].
template <class S>
inline typename S::V exp_clamped(typename S::V x) {
  return exp_in_range<S>(S::min(S::max(x, S::set1(-87.0f)), S::set1(88.0f)));
}

}  // namespace
}  // namespace ep::kernels::detail
