// libFuzzer target: arbitrary bytes as an auth file (--auth-file), split at a point the first
// byte chooses into the file's text and a presented token. Every outcome must be a table or one
// ep::Error, never a crash, a hang or an out-of-bounds read; a parsed table then authenticates
// the token, and its own entries' tokens are unknown (only hashes are stored).
#include "core/error.h"
#include "http/auth.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t split = bytes.empty() ? 0 : size_t(data[0]) % (bytes.size() + 1);
  try {
    const auto table = ep::http::AuthTable::parse(bytes.substr(0, split));
    const auto who = table.authenticate("Bearer " + std::string(bytes.substr(split)));
    if (who && !ep::http::valid_tenant(who->tenant)) __builtin_trap();
  } catch (const ep::Error&) {
  }
  return 0;
}
