#include "core/quant_check.h"

#include "core/half.h"

#include <cstddef>
#include <cstring>

namespace ep {
namespace {

struct ScaleField {
  size_t offset;
  std::string_view name;
};

// The f16 fields of one block of `type`; returns how many (at most 2).
int scale_fields(DType type, ScaleField* f) {
  switch (type) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0:
      f[0] = {0, "d"};
      return 1;
    case DType::Q4_1:
    case DType::Q5_1:
      f[0] = {0, "d"};
      f[1] = {2, "m"};
      return 2;
    case DType::Q2_K:
      f[0] = {offsetof(BlockQ2_K, d), "d"};
      f[1] = {offsetof(BlockQ2_K, dmin), "dmin"};
      return 2;
    case DType::Q3_K:
      f[0] = {offsetof(BlockQ3_K, d), "d"};
      return 1;
    case DType::Q4_K:
    case DType::Q5_K:
      f[0] = {0, "d"};
      f[1] = {2, "dmin"};
      return 2;
    case DType::Q6_K:
      f[0] = {offsetof(BlockQ6_K, d), "d"};
      return 1;
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return 0;
  }
  return 0;
}

}  // namespace

std::optional<BadScale> find_nonfinite_scale(DType type, const void* data, int64_t n_blocks) {
  ScaleField fields[2];
  const int n_fields = scale_fields(type, fields);
  if (n_fields == 0) return std::nullopt;
  const auto* p = static_cast<const uint8_t*>(data);
  const auto block_bytes = size_t(dtype_block_bytes(type));
  for (int64_t b = 0; b < n_blocks; ++b, p += block_bytes) {
    for (int k = 0; k < n_fields; ++k) {
      uint16_t h = 0;
      std::memcpy(&h, p + fields[k].offset, sizeof h);
      if ((h & 0x7c00u) == 0x7c00u) return BadScale{b, fields[k].name, f16_to_f32(h)};
    }
  }
  return std::nullopt;
}

}  // namespace ep
