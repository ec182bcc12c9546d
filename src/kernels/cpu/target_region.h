// Compiles a region of a kernel file for extra instruction sets, without global compiler flags
// (the binary must run on any x86-64; the kernels are chosen at run time by cpu_features()):
//
//   EP_TARGET_REGION_BEGIN("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
//   ... functions using those intrinsics ...
//   EP_TARGET_REGION_END
//
// GCC and clang spell this differently (`#pragma GCC target` vs `#pragma clang attribute`). The
// region also silences -W(maybe-)uninitialized, which both compilers raise on the undefined upper
// lanes of intrinsics such as _mm512_castsi256_si512.
#pragma once

#define EP_PRAGMA(...) _Pragma(#__VA_ARGS__)

// Unrolls the next loop fully when its trip count is a compile-time constant <= n: a loop over an
// array of vector accumulators must be unrolled for them to stay in registers.
#define EP_UNROLL(n) EP_PRAGMA(GCC unroll n)

#if defined(__clang__)
#define EP_TARGET_REGION_BEGIN(targets)                 \
  EP_PRAGMA(clang diagnostic push)                      \
  EP_PRAGMA(clang diagnostic ignored "-Wuninitialized") \
  EP_PRAGMA(clang attribute push(__attribute__((target(targets))), apply_to = function))
#define EP_TARGET_REGION_END     \
  EP_PRAGMA(clang attribute pop) \
  EP_PRAGMA(clang diagnostic pop)
#else
#define EP_TARGET_REGION_BEGIN(targets)                     \
  EP_PRAGMA(GCC diagnostic push)                            \
  EP_PRAGMA(GCC diagnostic ignored "-Wuninitialized")       \
  EP_PRAGMA(GCC diagnostic ignored "-Wmaybe-uninitialized") \
  EP_PRAGMA(GCC push_options)                               \
  EP_PRAGMA(GCC target(targets))
#define EP_TARGET_REGION_END \
  EP_PRAGMA(GCC pop_options) \
  EP_PRAGMA(GCC diagnostic pop)
#endif
