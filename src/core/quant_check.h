// Validation of quantised tensor data: every f16 scale (and min) of every block must be finite.
// A file with an infinite or NaN scale cannot have come from a quantiser; it is corrupt.
#pragma once

#include "core/dtype.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace ep {

struct BadScale {
  int64_t block;           // index of the first bad block
  std::string_view field;  // "d", "m" or "dmin"
  float value;             // inf or nan
};

// The first block of `n_blocks` blocks of `type` at `data` whose scale or min is not finite;
// nullopt if there is none (always for float types).
std::optional<BadScale> find_nonfinite_scale(DType type, const void* data, int64_t n_blocks);

}  // namespace ep
