// Errors: one exception type carrying one clear, user-facing line.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace ep {

// Thrown for every user-visible failure (bad file, bad argument, bad request). The message names
// what is wrong and where; the CLI prints it as "error: <message>" and exits non-zero.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ep
