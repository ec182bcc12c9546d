// A read-only view of a 2-D weight matrix in any storage type: `rows` rows of `cols` elements,
// each row stored contiguously (dtype_row_bytes(type, cols) bytes apart).
#pragma once

#include "core/dtype.h"

#include <cstdint>

namespace ep {

struct MatrixView {
  DType type = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;

  int64_t row_bytes() const { return dtype_row_bytes(type, cols); }
  const void* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
};

}  // namespace ep
