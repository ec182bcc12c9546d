// UTF-8 validation and streaming helpers, and GPT-2's byte <-> character map.
#include "core/error.h"
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

namespace ep {
namespace {

TEST(TokenizerUnicode, Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA9 \xE2\x82\xAC \xF0\x9F\xA6\x99 \xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation byte
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  try {
    check_utf8("ok\xE2\x82", "prompt");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "prompt is not valid UTF-8 (byte offset 2: 0xE2)");
  }
}

TEST(TokenizerUnicode, CharsAndCodepoints) {
  const auto chars = utf8_chars("a\xC3\xA9\xF0\x9F\xA6\x99");
  ASSERT_EQ(chars.size(), 3u);
  EXPECT_EQ(chars[1], "\xC3\xA9");
  EXPECT_EQ(utf8_decode_first(chars[2]), U'\U0001F999');
  for (const char32_t cp : {U'\0', U'A', U'\u00E9', U'\u20AC', U'\U0001F999', U'\U0010FFFF'}) {
    const std::string s = utf8_encode(cp);
    EXPECT_EQ(utf8_char_length(s), s.size());
    EXPECT_EQ(utf8_decode_first(s), cp);
  }
}

TEST(TokenizerUnicode, EmittablePrefix) {
  EXPECT_EQ(utf8_emittable_prefix(""), 0u);
  EXPECT_EQ(utf8_emittable_prefix("abc"), 3u);
  EXPECT_EQ(utf8_emittable_prefix("a\xE2"), 1u);
  EXPECT_EQ(utf8_emittable_prefix("a\xE2\x82"), 1u);
  EXPECT_EQ(utf8_emittable_prefix("a\xE2\x82\xAC"), 4u);
  EXPECT_EQ(utf8_emittable_prefix("\xF0\x9F\xA6"), 0u);
  EXPECT_EQ(utf8_emittable_prefix("\xE2\x28"), 2u);  // can never complete: out it goes
  EXPECT_EQ(utf8_emittable_prefix("\xED\xA0"), 2u);  // would be a surrogate
  EXPECT_EQ(utf8_emittable_prefix("\x80"), 1u);
  EXPECT_EQ(utf8_emittable_prefix("\xFF"), 1u);
}

TEST(TokenizerUnicode, ReplaceInvalid) {
  EXPECT_EQ(utf8_replace_invalid("a\xFF"
                                 "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8_replace_invalid("\xE2\x82"), "\xEF\xBF\xBD");  // one maximal subpart
  EXPECT_EQ(utf8_replace_invalid("\xF0\x9F\x41"),
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(utf8_replace_invalid("\xC3\xA9"), "\xC3\xA9");
}

TEST(TokenizerUnicode, Gpt2ByteMap) {
  const ByteLevelMap map;
  EXPECT_EQ(map.encode(uint8_t(' ')), "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(map.encode(uint8_t('\n')), "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(map.encode(uint8_t(0xAD)), "\xC5\x83");  // U+0143 'Ń'
  EXPECT_EQ(map.encode(uint8_t('a')), "a");
  EXPECT_EQ(map.encode(uint8_t(0xE9)), "\xC3\xA9");  // printable Latin-1 maps to itself
  std::string all;
  for (int b = 0; b < 256; ++b) all += char(b);
  const std::string mapped = map.encode(all);
  EXPECT_TRUE(is_valid_utf8(mapped));
  EXPECT_EQ(utf8_chars(mapped).size(), 256u);
  EXPECT_EQ(map.decode(mapped), all);
  EXPECT_EQ(map.decode("\xE2\x82\xAC"), "\xE2\x82\xAC");  // not a mapped character: copied
}

}  // namespace
}  // namespace ep
