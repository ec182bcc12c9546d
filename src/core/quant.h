// Conversion of rows between f32 and every storage type (reference implementations).
#pragma once

#include "core/dtype.h"

#include <cstdint>

namespace ep {

// Converts n f32 values to `type`, writing dtype_row_bytes(type, n) bytes to dst.
// For quantised types n must be a multiple of 32. Quantisation follows the ggml reference
// (Q8_0: d = max|x| / 127, q = round(x / d); Q4_0: d = x_maxabs / -8, q = min(15, x / d + 8.5)).
// Only F32, F16, BF16, Q8_0 and Q4_0 are written; the other quantised types (made by llama.cpp's
// llama-quantize) are only read, and asking for them throws ep::Error.
void quantize_row(DType type, const float* src, void* dst, int64_t n);

// Converts n values stored as `type` to f32 (n a multiple of dtype_block_elems(type)), bit for
// bit as ggml's reference dequantiser.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

}  // namespace ep
