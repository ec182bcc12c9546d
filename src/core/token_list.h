// Parsing "--tokens 1,2,3".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ep {

// Accepts comma- or whitespace-separated non-negative integers; throws ep::Error on anything else.
std::vector<int32_t> parse_token_list(const std::string& text);

}  // namespace ep
