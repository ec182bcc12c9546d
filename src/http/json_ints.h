// Integers of a request's JSON, read without wrapping: nlohmann's get<int>() turns 4294967297
// into 1, so a count or a token id is taken as a 64-bit value and checked against its range.
#pragma once

#include "http/error.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace ep::http {

// `v` as an integer in [lo, hi]; throws HttpError (InvalidRequest) naming `what` otherwise
// (not an integer, or out of range: a huge value is not taken modulo 2^32).
inline int64_t json_int(const nlohmann::json& v, std::string_view what, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max()) || int64_t(u) > hi || int64_t(u) < lo) {
      fail(ErrorKind::InvalidRequest, "'{}' must be an integer from {} to {}", what, lo, hi);
    }
    return int64_t(u);
  }
  if (!v.is_number_integer()) {
    fail(ErrorKind::InvalidRequest, "'{}' must be an integer from {} to {}", what, lo, hi);
  }
  const int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) {
    fail(ErrorKind::InvalidRequest, "'{}' must be an integer from {} to {}", what, lo, hi);
  }
  return i;
}

// A list of token ids (each in [0, 2^31)); the vocabulary bound is checked by the caller.
inline std::vector<int32_t> json_token_ids(const nlohmann::json& v, std::string_view what) {
  if (!v.is_array()) fail(ErrorKind::InvalidRequest, "'{}' must be an array of token ids", what);
  std::vector<int32_t> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    out.push_back(int32_t(json_int(e, what, 0, std::numeric_limits<int32_t>::max())));
  }
  return out;
}

}  // namespace ep::http
