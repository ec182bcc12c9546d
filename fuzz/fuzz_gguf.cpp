// libFuzzer target: GgufFile::parse must either throw ep::Error or return metadata and tensors
// that lie wholly inside the input. Every tensor byte and every metadata value is read, and the
// first rows of each tensor are dequantised and their block scales checked, so AddressSanitizer
// reports anything that reaches past the buffer.
#include "core/error.h"
#include "core/quant.h"
#include "core/quant_check.h"
#include "model/gguf.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  try {
    const auto file = ep::GgufFile::parse(bytes, "fuzz.gguf");
    uint64_t checksum = file->version() + file->alignment();
    for (const auto& [key, value] : file->metadata()) {
      if (file->find(key) == nullptr) __builtin_trap();
      checksum += key.size() + value.to_display_string().size();
    }
    for (const auto& t : file->tensors()) {
      if (t.data < data || t.n_bytes > size || t.data + t.n_bytes > data + size) __builtin_trap();
      if (file->find_tensor(t.name) == nullptr) __builtin_trap();
      checksum += uint64_t(t.n_elements());
      for (uint64_t i = 0; i < t.n_bytes; ++i) checksum = checksum * 31 + t.data[i];
      // Whole rows, at most 4096 values: the block decoders stay inside the tensor whatever its
      // bytes are.
      const int64_t row = t.shape[0];
      if (row <= 4096) {
        const int64_t n = std::min(t.n_elements() / row, std::max<int64_t>(1, 4096 / row)) * row;
        std::vector<float> values(static_cast<size_t>(n));
        ep::dequantize_row(t.type, t.data, values.data(), n);
        for (const float v : values) checksum += std::bit_cast<uint32_t>(v);
      }
      const int64_t n_blocks = t.n_elements() / ep::dtype_block_elems(t.type);
      if (const auto bad = ep::find_nonfinite_scale(t.type, t.data, n_blocks))
        checksum += bad->block;
    }
    volatile uint64_t sink = checksum;
    (void)sink;
  } catch (const ep::Error&) {
    // Refusing a bad file is the expected outcome.
  }
  return 0;
}
