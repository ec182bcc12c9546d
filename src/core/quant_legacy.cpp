#include "core/quant_legacy.h"

#include "core/half.h"

#include <cstring>

namespace ep {
namespace {

// The 5-bit values of a Q5_0/Q5_1 block: element j < 16 is the low nibble of qs[j], j + 16 its
// high nibble, and bit j of qh (a little-endian u32) is element j's fifth bit.
inline void unpack_q5(const uint8_t* qh_bytes, const uint8_t* qs, int* q) {
  uint32_t qh = 0;
  std::memcpy(&qh, qh_bytes, sizeof qh);
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0x0f) | int(((qh >> j) & 1u) << 4);
    q[j + 16] = (qs[j] >> 4) | int(((qh >> (j + 16)) & 1u) << 4);
  }
}

}  // namespace

void dequantize_row_legacy(DType type, const void* src, float* dst, int64_t n) {
  const int64_t nb = n / kQuantBlock;
  int q[kQuantBlock];
  for (int64_t i = 0; i < nb; ++i, dst += kQuantBlock) {
    switch (type) {
      case DType::Q4_1: {
        const BlockQ4_1& b = static_cast<const BlockQ4_1*>(src)[i];
        const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
        for (int j = 0; j < 16; ++j) {
          dst[j] = float(b.qs[j] & 0x0f) * d + m;
          dst[j + 16] = float(b.qs[j] >> 4) * d + m;
        }
        break;
      }
      case DType::Q5_0: {
        const BlockQ5_0& b = static_cast<const BlockQ5_0*>(src)[i];
        const float d = f16_to_f32(b.d);
        unpack_q5(b.qh, b.qs, q);
        for (int j = 0; j < kQuantBlock; ++j) dst[j] = float(q[j] - 16) * d;
        break;
      }
      case DType::Q5_1: {
        const BlockQ5_1& b = static_cast<const BlockQ5_1*>(src)[i];
        const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
        unpack_q5(b.qh, b.qs, q);
        for (int j = 0; j < kQuantBlock; ++j) dst[j] = float(q[j]) * d + m;
        break;
      }
      default:
        return;
    }
  }
}

}  // namespace ep
