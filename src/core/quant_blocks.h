// Byte layouts of the ggml block types beyond Q8_0 and Q4_0, as they are stored in GGUF files
// (little-endian; every struct is packed by its members' natural alignment, fp16 values held as
// their uint16_t bits). Element order and value formulas are in quant_k.cpp and quant_legacy.cpp.
#pragma once

#include <cstdint>

namespace ep {

inline constexpr int kSuperBlock = 256;  // elements per K-quant super-block (ggml's QK_K)

// Q4_1: x = d·q + m, q a nibble; element j < 16 in the low nibble of qs[j], j + 16 in the high.
struct BlockQ4_1 {
  uint16_t d, m;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

// Q5_0: x = d·(q − 16), q 5 bits: the nibble as in Q4_0 plus bit j of qh (little-endian u32) as
// its fifth bit.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q5_1: x = d·q + m with Q5_0's 5-bit q.
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

// Q2_K: 16 sub-blocks of 16; per sub-block a 4-bit scale (low nibble) and 4-bit min (high);
// x = d·scale·q − dmin·min, q 2 bits.
struct BlockQ2_K {
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d, dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

// Q3_K: 16 sub-blocks of 16 with 6-bit signed scales (offset 32) packed into 12 bytes;
// x = d·(scale − 32)·(q − 4·!high_bit), q 2 bits from qs and the high bit from hmask.
struct BlockQ3_K {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins packed into 12 bytes;
// x = d·scale·q − dmin·min, q a nibble.
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q5_K: Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ5_K) == 176);

// Q6_K: 16 sub-blocks of 16 with signed 8-bit scales; x = d·scale·(q − 32), q 6 bits: the low 4
// in ql, the high 2 in qh.
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

}  // namespace ep
