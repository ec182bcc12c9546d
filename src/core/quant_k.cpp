#include "core/quant_k.h"

#include "core/half.h"

namespace ep {
namespace {

// Q2_K. The 64 bytes of qs hold 2-bit values in four bit planes: byte l of the 32-byte half h,
// bits 2s..2s+1, is element 128h + 32s + l. Sub-block i (16 elements) uses scales[i].
void dequantize_q2_k(const BlockQ2_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, ++b) {
    const float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = b->qs + 32 * h;
      for (int s = 0; s < 4; ++s) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = b->scales[8 * h + 2 * s + half];
          const float dl = d * float(sc & 0x0f), ml = dmin * float(sc >> 4);
          for (int l = 0; l < 16; ++l) {
            *y++ = dl * float((q[16 * half + l] >> (2 * s)) & 3) - ml;
          }
        }
      }
    }
  }
}

// The sixteen 6-bit scales of a Q3_K block: the low four bits of scale j are the low nibble of
// byte j (j < 8) or the high nibble of byte j − 8; its high two bits are bits 2·(j / 4) and up of
// byte 8 + j % 4. Stored with an offset of 32.
inline int q3_k_scale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q3_K. The low two bits as in Q2_K; bit 4h + s of hmask[l] is the high bit of elements
// 128h + 32s + l and (with l + 16) of the sub-block after it; value = low − (high ? 0 : 4).
void dequantize_q3_k(const BlockQ3_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, ++b) {
    const float d = f16_to_f32(b->d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = b->qs + 32 * h;
      for (int s = 0; s < 4; ++s) {
        const uint8_t bit = uint8_t(1u << (4 * h + s));
        for (int half = 0; half < 2; ++half) {
          const float dl = d * float(q3_k_scale(b->scales, 8 * h + 2 * s + half));
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int v = ((q[l] >> (2 * s)) & 3) - ((b->hmask[l] & bit) ? 0 : 4);
            *y++ = dl * float(v);
          }
        }
      }
    }
  }
}

// Scale and min of sub-block j of a Q4_K/Q5_K block (12 bytes: j < 4 in the low six bits of
// bytes j and j + 4; j ≥ 4 from the nibbles of byte j + 4 and the top two bits of bytes j − 4
// and j).
inline void k4_scale_min(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K (qh null) and Q5_K. Group g of 64 elements: its first 32 are the low nibbles of qs[32g ..],
// its last 32 the high nibbles, sub-blocks 2g and 2g + 1; Q5_K's fifth bit of element l of
// sub-block k is bit k of qh[l].
template <class Block>
void dequantize_q45_k(const Block* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, ++b) {
    const float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
    for (int g = 0; g < 4; ++g) {
      const uint8_t* q = b->qs + 32 * g;
      for (int half = 0; half < 2; ++half) {
        int sc = 0, m = 0;
        k4_scale_min(b->scales, 2 * g + half, sc, m);
        const float dl = d * float(sc), ml = dmin * float(m);
        for (int l = 0; l < 32; ++l) {
          int v = half == 0 ? (q[l] & 0x0f) : (q[l] >> 4);
          if constexpr (sizeof(Block) == sizeof(BlockQ5_K)) {
            if (b->qh[l] & (1u << (2 * g + half))) v += 16;
          }
          *y++ = dl * float(v) - ml;
        }
      }
    }
  }
}

// Q6_K. Half h (128 elements) uses ql[64h ..], qh[32h ..] and scales[8h ..]; for l < 32 the four
// elements 128h + 32k + l (k = 0..3) take their low nibble from ql[l] (k = 0), ql[l + 32] (1),
// the high nibbles of the same (2, 3), their high two bits from bits 2k, 2k + 1 of qh[l], and
// scale 8h + 2k + l / 16; value = d·scale·(q − 32).
void dequantize_q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, ++b, y += kSuperBlock) {
    const float d = f16_to_f32(b->d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b->ql + 64 * h;
      const uint8_t* qh = b->qh + 32 * h;
      const int8_t* sc = b->scales + 8 * h;
      float* o = y + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q0 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q1 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        o[l] = d * float(sc[is]) * float(q0);
        o[l + 32] = d * float(sc[is + 2]) * float(q1);
        o[l + 64] = d * float(sc[is + 4]) * float(q2);
        o[l + 96] = d * float(sc[is + 6]) * float(q3);
      }
    }
  }
}

}  // namespace

void dequantize_row_k(DType type, const void* src, float* dst, int64_t n) {
  const int64_t nb = n / kSuperBlock;
  switch (type) {
    case DType::Q2_K:
      return dequantize_q2_k(static_cast<const BlockQ2_K*>(src), dst, nb);
    case DType::Q3_K:
      return dequantize_q3_k(static_cast<const BlockQ3_K*>(src), dst, nb);
    case DType::Q4_K:
      return dequantize_q45_k(static_cast<const BlockQ4_K*>(src), dst, nb);
    case DType::Q5_K:
      return dequantize_q45_k(static_cast<const BlockQ5_K*>(src), dst, nb);
    case DType::Q6_K:
      return dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb);
    default:
      return;
  }
}

}  // namespace ep
