// Element types of weights and activations, with the exact ggml/GGUF ids and block layouts.
#pragma once

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
  Q8_0 = 8,
  BF16 = 30,
};

inline constexpr int kQuantBlock = 32;  // elements per Q8_0 / Q4_0 block

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

std::string_view dtype_name(DType t);  // "f32", "f16", "bf16", "q8_0", "q4_0"
std::optional<DType> dtype_from_name(std::string_view name);
std::optional<DType> dtype_from_ggml_id(uint32_t id);  // nullopt for types we do not support
std::string_view ggml_type_name(uint32_t id);          // any ggml id, for error messages

// Inline: the matrix kernels compute a row's address from them once per row.
constexpr int64_t dtype_block_elems(DType t) {  // 1 for float types, 32 for quantised ones
  return (t == DType::Q8_0 || t == DType::Q4_0) ? kQuantBlock : 1;
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
  }
  return 0;
}
// Bytes of a row of n elements; n must be a multiple of the block size (checked by callers).
constexpr int64_t dtype_row_bytes(DType t, int64_t n) {
  return n / dtype_block_elems(t) * dtype_block_bytes(t);
}

}  // namespace ep
