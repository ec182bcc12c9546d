// Stops generation at any of a set of strings while streaming: text that might be the start of a
// stop string is held back until it is known not to be one, so the stop string is never printed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ep {

class StopStrings {
 public:
  // Throws ep::Error for an empty or non-UTF-8 stop string.
  explicit StopStrings(std::vector<std::string> stops);

  // Adds generated text; returns what can be shown now. After a stop string has appeared,
  // stopped() is true and the return value ends just before it.
  std::string push(std::string_view text);
  // What is still held back (at the end of generation, when no stop string completed).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // text not yet shown: a possible start of a stop string
  bool stopped_ = false;
};

}  // namespace ep
