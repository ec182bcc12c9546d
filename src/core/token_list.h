// Token-id lists: parsing "--tokens 1,2,3", and the one range check every outside id passes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

// Accepts comma- or whitespace-separated non-negative integers; throws ep::Error on anything else.
std::vector<int32_t> parse_token_list(const std::string& text);

// Throws ep::Error "token id X out of range (the model has N tokens)" for the first id outside
// [0, n_vocab); `what` (e.g. "KV stream") prefixes the message when given.
void check_token_ids(std::span<const int32_t> ids, int64_t n_vocab, std::string_view what = {});

}  // namespace ep
