// UTF-8 helpers for the tokenizers, and the GPT-2 byte <-> printable-character map.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

// Length of the UTF-8 sequence that starts with `lead` (1-4), or 0 when `lead` cannot start one.
size_t utf8_sequence_length(uint8_t lead);

// Length of the well-formed UTF-8 character at the start of `s` (no overlongs, no surrogates, at
// most U+10FFFF), or 0 when `s` is empty or does not start with one.
size_t utf8_char_length(std::string_view s);

bool is_valid_utf8(std::string_view s);

// Throws ep::Error "<what> is not valid UTF-8 (byte offset N: 0xXX)" at the first bad byte.
void check_utf8(std::string_view s, std::string_view what);

// Splits valid UTF-8 into its characters (views into `s`).
std::vector<std::string_view> utf8_chars(std::string_view s);

std::string utf8_encode(char32_t codepoint);

// Decodes the (valid) UTF-8 character at the start of `s`.
char32_t utf8_decode_first(std::string_view s);

// Streaming support: how many leading bytes of `s` can be emitted now. Complete characters (and
// bytes that can never become valid, which the caller replaces with U+FFFD) come out; a trailing
// sequence that may still be completed by later bytes stays behind.
size_t utf8_emittable_prefix(std::string_view s);

// Copies `s`, replacing each ill-formed byte sequence with U+FFFD (one per maximal bad subpart).
std::string utf8_replace_invalid(std::string_view s);

// GPT-2's byte-level BPE runs on printable characters: each byte maps to one code point
// (printable Latin-1 bytes map to themselves, the rest to U+0100 onwards) so that merges and
// vocabularies never contain raw control bytes or spaces.
class ByteLevelMap {
 public:
  ByteLevelMap();
  // The UTF-8 text of the character standing for `byte`.
  const std::string& encode(uint8_t byte) const { return byte_to_text_[byte]; }
  // Maps every byte of `s` to its character.
  std::string encode(std::string_view s) const;
  // The byte a code point stands for, or -1 when it is not one of the 256 mapped characters.
  int decode(char32_t codepoint) const;
  // Maps mapped characters back to bytes; characters outside the map are copied unchanged.
  std::string decode(std::string_view text) const;

 private:
  std::array<std::string, 256> byte_to_text_;
  std::array<int16_t, 512> codepoint_to_byte_{};  // every mapped code point is below U+0200
};

}  // namespace ep
