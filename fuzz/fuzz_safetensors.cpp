// libFuzzer target: SafetensorsArchive::parse must either throw ep::Error or return tensors that
// lie wholly inside the input. Every tensor byte is read, so AddressSanitizer reports any tensor
// that reaches past the buffer.
#include "core/error.h"
#include "model/safetensors.h"

#include <cstddef>
#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  try {
    const auto archive = ep::SafetensorsArchive::parse(bytes, "fuzz.safetensors");
    uint64_t checksum = 0;
    for (const auto& t : archive->tensors()) {
      if (t.data < data || t.n_bytes > size || t.data + t.n_bytes > data + size) __builtin_trap();
      if (archive->find(t.name) != &t) __builtin_trap();
      const int64_t n = t.n_elements();
      if (n < 0) __builtin_trap();
      for (uint64_t i = 0; i < t.n_bytes; ++i) checksum = checksum * 31 + t.data[i];
    }
    volatile uint64_t sink = checksum;
    (void)sink;
  } catch (const ep::Error&) {
    // Refusing a bad file is the expected outcome.
  }
  return 0;
}
