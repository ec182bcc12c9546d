// libFuzzer target: arbitrary bytes as a ShareGPT-format dataset file, read the way bench-serve
// reads one (streaming, keeping the first human turn and the answer after it). Every outcome
// must be a list of pairs or an ep::Error, never a crash, a hang or an out-of-bounds read.
#include "core/error.h"
#include "loadgen/sharegpt.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto pairs = ep::loadgen::read_sharegpt(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json");
    (void)ep::loadgen::sharegpt_prompts(pairs, 8, 1, ep::loadgen::approx_token_count, std::nullopt);
  } catch (const ep::Error&) {
  }
  return 0;
}
