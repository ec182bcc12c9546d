#include "jinja/utf8.h"

#include <algorithm>

namespace ep::jinja::utf8 {

std::uint32_t decode(std::string_view s, std::size_t i, std::size_t* len) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c < 0x80) {
    *len = 1;
    return c;
  } else if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    *len = 1;
    return c;
  }
  if (i + n > s.size()) {
    *len = 1;
    return c;
  }
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      *len = 1;
      return c;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *len = n;
  return cp;
}

void append(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_space(std::uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::size_t length(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0, len = 0; i < s.size(); i += len, ++n) decode(s, i, &len);
  return n;
}

std::vector<std::size_t> offsets(std::string_view s) {
  std::vector<std::size_t> out;
  out.reserve(s.size() + 1);
  std::size_t i = 0;
  for (std::size_t len = 0; i < s.size(); i += len) {
    out.push_back(i);
    decode(s, i, &len);
  }
  out.push_back(i);
  return out;
}

namespace {

// The byte offset where the whitespace (or `chars`) suffix of s starts.
template <typename Pred>
std::size_t suffix_start(std::string_view s, Pred strip) {
  std::size_t i = 0, last_keep_end = 0;
  for (std::size_t len = 0; i < s.size(); i += len) {
    const auto cp = decode(s, i, &len);
    if (!strip(cp)) last_keep_end = i + len;
  }
  return last_keep_end;
}

template <typename Pred>
std::size_t prefix_end(std::string_view s, Pred strip) {
  std::size_t i = 0;
  for (std::size_t len = 0; i < s.size(); i += len) {
    const auto cp = decode(s, i, &len);
    if (!strip(cp)) break;
  }
  return i;
}

}  // namespace

std::size_t space_prefix(std::string_view s) {
  return prefix_end(s, is_space);
}

std::string_view rstrip(std::string_view s) {
  return s.substr(0, suffix_start(s, is_space));
}
std::string_view lstrip(std::string_view s) {
  return s.substr(prefix_end(s, is_space));
}
std::string_view strip(std::string_view s) {
  return lstrip(rstrip(s));
}

std::string_view strip_chars(std::string_view s, std::string_view chars, bool left, bool right) {
  std::vector<std::uint32_t> set;
  for (std::size_t i = 0, len = 0; i < chars.size(); i += len)
    set.push_back(decode(chars, i, &len));
  auto in_set = [&](std::uint32_t cp) {
    return std::find(set.begin(), set.end(), cp) != set.end();
  };
  if (right) s = s.substr(0, suffix_start(s, in_set));
  if (left) s = s.substr(prefix_end(s, in_set));
  return s;
}

}  // namespace ep::jinja::utf8
