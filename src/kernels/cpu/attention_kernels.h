// Internal: instruction-set-specific attention kernels behind kernels::attention.
#pragma once

#include "kernels/cpu/attention.h"

#include <cstdint>

namespace ep::kernels::detail {

// Computes the (query token, KV head) items [begin, end) of an attention call (item =
// i * n_head_kv + kv head: every query head of that KV head's group). kt is nullptr or the keys
// transposed in blocks of 16: for KV head h and key block b, kt[((h * n_kb + b) * head_dim + d)
// * 16 + j] = element d of key 16b + j (zeros past n_kv), n_kb = ceil(n_kv / 16); only with
// a.window == 0. Results are bit-identical either way.
using AttentionRangeFn = void (*)(const AttentionArgs& a, const float* kt, int64_t begin,
                                  int64_t end);

// The vectorised kernel (attention_simd.inc) for this head size, or nullptr when it has none;
// call only on CPUs with AVX-512 F/BW/VL/DQ, respectively AVX2 + FMA + F16C.
AttentionRangeFn attention_range_avx512(int64_t head_dim);
AttentionRangeFn attention_range_avx2(int64_t head_dim);

// The portable kernel compiled for AVX2 + FMA, over items [begin, end) of a.n_q * a.n_head
// (item = i * n_head + h; call only on CPUs with AVX2 + FMA + F16C).
void portable_attention_range_avx2(const AttentionArgs& a, int64_t begin, int64_t end);

}  // namespace ep::kernels::detail
