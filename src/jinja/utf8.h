// UTF-8 helpers for Python's string semantics: lengths, indices and slices count code points,
// and whitespace is Unicode whitespace (str.isspace()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ep::jinja::utf8 {

// The code point starting at s[i] and its length in bytes (an invalid byte counts as one code
// point of its own value, so every input is walked without reading past its end).
std::uint32_t decode(std::string_view s, std::size_t i, std::size_t* len);
void append(std::string& out, std::uint32_t cp);
bool is_space(std::uint32_t cp);  // Python's str.isspace() for one code point
bool is_ascii(std::string_view s);
std::size_t length(std::string_view s);  // in code points
// The byte offset at which each code point starts, plus s.size() at the end.
std::vector<std::size_t> offsets(std::string_view s);

std::string_view rstrip(std::string_view s);  // Python's str.rstrip() (whitespace)
std::string_view lstrip(std::string_view s);
std::string_view strip(std::string_view s);
// Strips the code points in `chars` (Python's strip(chars)).
std::string_view strip_chars(std::string_view s, std::string_view chars, bool left, bool right);
// The length of the whitespace prefix of s, in bytes.
std::size_t space_prefix(std::string_view s);

}  // namespace ep::jinja::utf8
