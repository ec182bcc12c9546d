// ggml's other 32-element block types that llama-quantize writes into mixed files: Q4_1, Q5_0
// and Q5_1 (layouts in core/quant_blocks.h).
#pragma once

#include "core/dtype.h"

#include <cstdint>

namespace ep {

// Converts n values (a multiple of 32) of Q4_1, Q5_0 or Q5_1 to f32, as ggml's reference
// dequantiser computes them (d·q, then + m, each rounded to f32).
void dequantize_row_legacy(DType type, const void* src, float* dst, int64_t n);

}  // namespace ep
