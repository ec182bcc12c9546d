// NumPy .npy files (format 1.0): the logits output and the reference fixtures.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace ep {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<double> data;  // converted from '<f4' or '<f8'
};

// Writes a C-order float32 array atomically (temp file + rename).
void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape,
                   const float* data);
// Reads a little-endian float32 or float64 C-order array; throws ep::Error otherwise.
NpyArray read_npy(const std::filesystem::path& path);

}  // namespace ep
