// Internal: instruction-set-specific attention kernels behind kernels::attention.
#pragma once

#include "kernels/cpu/attention.h"

#include <cstdint>

namespace ep::kernels::detail {

// Computes the (query, head) items [begin, end) of an attention call (item = i * n_head + h).
using AttentionRangeFn = void (*)(const AttentionArgs& a, int64_t begin, int64_t end);

// The AVX-512 kernel for this head size, or nullptr when it has none (call only on CPUs with
// AVX-512 F/BW/VL/DQ).
AttentionRangeFn attention_range_avx512(int64_t head_dim);

}  // namespace ep::kernels::detail
