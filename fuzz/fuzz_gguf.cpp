// libFuzzer target: GgufFile::parse must either throw ep::Error or return metadata and tensors
// that lie wholly inside the input. Every tensor byte and every metadata value is read, so
// AddressSanitizer reports anything that reaches past the buffer.
#include "core/error.h"
#include "model/gguf.h"

#include <cstddef>
#include <cstdint>
#include <span>

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
    }
    volatile uint64_t sink = checksum;
    (void)sink;
  } catch (const ep::Error&) {
    // Refusing a bad file is the expected outcome.
  }
  return 0;
}
