// The K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K): 256-element super-blocks with quantised
// sub-block scales, as llama.cpp's llama-quantize writes them (layouts in core/quant_blocks.h).
#pragma once

#include "core/dtype.h"

#include <cstdint>

namespace ep {

// Converts n values (a multiple of 256) of a K-quant type to f32, exactly as ggml's reference
// dequantiser computes them: the sub-block scale and min are formed in f32 first (d·scale,
// dmin·min), then each element is scale·q − min, every step rounded to f32 (no fused multiply-add).
void dequantize_row_k(DType type, const void* src, float* dst, int64_t n);

}  // namespace ep
