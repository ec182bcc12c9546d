#include "tokenizer/unicode.h"

#include "core/error.h"

namespace ep {
namespace {

// Allowed range of the second byte for each lead byte (the Unicode "well-formed UTF-8" table);
// later bytes are always 0x80..0xBF. This rejects overlongs, surrogates and code points > U+10FFFF.
struct SecondByteRange {
  uint8_t lo, hi;
};
SecondByteRange second_byte_range(uint8_t lead) {
  if (lead == 0xE0) return {0xA0, 0xBF};
  if (lead == 0xED) return {0x80, 0x9F};
  if (lead == 0xF0) return {0x90, 0xBF};
  if (lead == 0xF4) return {0x80, 0x8F};
  return {0x80, 0xBF};
}

// How many bytes at the start of `s` follow the pattern of a well-formed sequence (stops at the
// first byte that breaks it); `needed` receives the full length of the sequence (0: invalid lead
// byte).
size_t matching_prefix(std::string_view s, size_t& needed) {
  needed = s.empty() ? 0 : utf8_sequence_length(uint8_t(s[0]));
  if (needed == 0) return 0;
  size_t k = 1;
  while (k < needed && k < s.size()) {
    const auto b = uint8_t(s[k]);
    const SecondByteRange r =
        k == 1 ? second_byte_range(uint8_t(s[0])) : SecondByteRange{0x80, 0xBF};
    if (b < r.lo || b > r.hi) break;
    ++k;
  }
  return k;
}

}  // namespace

size_t utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;  // continuation bytes, C0/C1 (always overlong), F5..FF
}

size_t utf8_char_length(std::string_view s) {
  size_t needed = 0;
  const size_t k = matching_prefix(s, needed);
  return needed != 0 && k == needed ? needed : 0;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_char_length(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void check_utf8(std::string_view s, std::string_view what) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_char_length(s.substr(i));
    if (n == 0) {
      fail("{} is not valid UTF-8 (byte offset {}: 0x{:02X})", what, i, uint8_t(s[i]));
    }
    i += n;
  }
}

std::vector<std::string_view> utf8_chars(std::string_view s) {
  std::vector<std::string_view> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_char_length(s.substr(i));
    if (n == 0) n = 1;  // callers validate first; never loop forever on bad input
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string utf8_encode(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
  return out;
}

char32_t utf8_decode_first(std::string_view s) {
  const size_t n = utf8_char_length(s);
  if (n == 0) return 0xFFFD;
  const auto b0 = uint8_t(s[0]);
  if (n == 1) return b0;
  char32_t cp = b0 & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (uint8_t(s[k]) & 0x3F);
  return cp;
}

size_t utf8_emittable_prefix(std::string_view s) {
  // Only the last (at most 3) bytes can be the unfinished start of a character.
  const size_t from = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = s.size(); i-- > from;) {
    if (utf8_sequence_length(uint8_t(s[i])) == 0) continue;  // continuation (or bad) byte
    size_t needed = 0;
    const size_t k = matching_prefix(s.substr(i), needed);
    // Hold back only a well-formed but unfinished tail; anything else can go out now.
    return (needed > 1 && k == s.size() - i && k < needed) ? i : s.size();
  }
  return s.size();
}

std::string utf8_replace_invalid(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t needed = 0;
    const size_t k = matching_prefix(s.substr(i), needed);
    if (needed != 0 && k == needed) {
      out.append(s.substr(i, k));
      i += k;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal ill-formed subpart
      i += k > 0 ? k : 1;
    }
  }
  return out;
}

ByteLevelMap::ByteLevelMap() {
  codepoint_to_byte_.fill(-1);
  // Printable bytes keep their code point; the others get U+0100, U+0101, ... in byte order.
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const char32_t cp = printable ? char32_t(b) : next++;
    byte_to_text_[size_t(b)] = utf8_encode(cp);
    codepoint_to_byte_[cp] = int16_t(b);
  }
}

std::string ByteLevelMap::encode(std::string_view s) const {
  std::string out;
  out.reserve(s.size() * 2);
  for (const char c : s) out += byte_to_text_[uint8_t(c)];
  return out;
}

int ByteLevelMap::decode(char32_t cp) const {
  return cp < codepoint_to_byte_.size() ? codepoint_to_byte_[cp] : -1;
}

std::string ByteLevelMap::decode(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  for (const std::string_view ch : utf8_chars(text)) {
    const int b = decode(utf8_decode_first(ch));
    if (b >= 0) {
      out += char(b);
    } else {
      out.append(ch);
    }
  }
  return out;
}

}  // namespace ep
