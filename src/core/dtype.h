// Element types of weights and activations, with the exact ggml/GGUF ids and block layouts.
#pragma once

#include "core/quant_blocks.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ep {

// Values are the ggml type ids used in GGUF tensor tables.
enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

inline constexpr int kQuantBlock = 32;  // elements per Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 block

// Q8_0: one fp16 scale and 32 signed bytes; x = d * q.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQuantBlock];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q4_0: one fp16 scale and 32 nibbles; element j < 16 is the low nibble of qs[j], element j + 16
// the high nibble; x = d * (nibble - 8).
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

std::string_view dtype_name(DType t);  // "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", ...
std::optional<DType> dtype_from_name(std::string_view name);
std::optional<DType> dtype_from_ggml_id(uint32_t id);  // nullopt for types we do not support
std::string_view ggml_type_name(uint32_t id);          // any ggml id, for error messages

// The K-quants (Q2_K ... Q6_K): 256-element super-blocks with sub-block scales.
constexpr bool dtype_is_k_quant(DType t) {
  return t == DType::Q2_K || t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K ||
         t == DType::Q6_K;
}

// Inline: the matrix kernels compute a row's address from them once per row.
constexpr int64_t dtype_block_elems(DType t) {  // 1 for float types, 32 or 256 for quantised ones
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return 1;
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return kSuperBlock;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
      return kQuantBlock;
  }
  return 1;
}
constexpr int64_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::Q8_0:
      return int64_t(sizeof(BlockQ8_0));
    case DType::Q4_0:
      return int64_t(sizeof(BlockQ4_0));
    case DType::Q4_1:
      return int64_t(sizeof(BlockQ4_1));
    case DType::Q5_0:
      return int64_t(sizeof(BlockQ5_0));
    case DType::Q5_1:
      return int64_t(sizeof(BlockQ5_1));
    case DType::Q2_K:
      return int64_t(sizeof(BlockQ2_K));
    case DType::Q3_K:
      return int64_t(sizeof(BlockQ3_K));
    case DType::Q4_K:
      return int64_t(sizeof(BlockQ4_K));
    case DType::Q5_K:
      return int64_t(sizeof(BlockQ5_K));
    case DType::Q6_K:
      return int64_t(sizeof(BlockQ6_K));
  }
  return 0;
}
// Bytes of a row of n elements; n must be a multiple of the block size (checked by callers).
constexpr int64_t dtype_row_bytes(DType t, int64_t n) {
  return n / dtype_block_elems(t) * dtype_block_bytes(t);
}

}  // namespace ep
