// The byte-level BPE pre-tokenizer regexes (PCRE2, Unicode classes).
#include "core/error.h"
#include "tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

namespace ep {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(const Pretokenizer& pre, std::string_view text) {
  Pieces out;
  for (const auto piece : pre.split(text)) out.emplace_back(piece);
  return out;
}

TEST(TokenizerPretokenizer, Gpt2) {
  const Pretokenizer pre("gpt-2");
  EXPECT_FALSE(pre.ignore_merges());
  EXPECT_EQ(split(pre, "Hello world's  test 123!!"),
            (Pieces{"Hello", " world", "'s", " ", " test", " 123", "!!"}));
  EXPECT_EQ(split(pre, "I'M"), (Pieces{"I", "'", "M"}));  // contractions are case-sensitive here
  EXPECT_EQ(split(pre, "\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE \xD0\xBD\xD0\xB0"),  // нещо на
            (Pieces{"\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE", " \xD0\xBD\xD0\xB0"}));
  EXPECT_EQ(split(pre,
                  "\xE6\x88\x91\xE6\x83\xB3"
                  "apple"),
            (Pieces{"\xE6\x88\x91\xE6\x83\xB3"
                    "apple"}));
  // U+3000 IDEOGRAPHIC SPACE is \s only with Unicode classes.
  EXPECT_EQ(split(pre,
                  "a\xE3\x80\x80\xE3\x80\x80"
                  "b"),
            (Pieces{"a", "\xE3\x80\x80", "\xE3\x80\x80", "b"}));
  EXPECT_EQ(split(pre, ""), Pieces{});
}

TEST(TokenizerPretokenizer, Llama3) {
  for (const char* name : {"llama-bpe", "llama3", "llama-v3"}) {
    const Pretokenizer pre(name);
    EXPECT_TRUE(pre.ignore_merges());
    EXPECT_EQ(split(pre, "1234567"), (Pieces{"123", "456", "7"}));
    EXPECT_EQ(split(pre, "I'M fine"), (Pieces{"I", "'M", " fine"}));
    EXPECT_EQ(split(pre, "hi!!\nthere\n\n  x"), (Pieces{"hi", "!!\n", "there", "\n\n", " ", " x"}));
    // Arabic-Indic digits are \p{N}.
    EXPECT_EQ(split(pre, "abc\xD9\xA3\xD9\xA4\xD9\xA5\xD9\xA6"),
              (Pieces{"abc", "\xD9\xA3\xD9\xA4\xD9\xA5", "\xD9\xA6"}));
  }
}

TEST(TokenizerPretokenizer, Qwen2) {
  const Pretokenizer pre("qwen2");
  EXPECT_FALSE(pre.ignore_merges());
  EXPECT_EQ(split(pre, "1234"), (Pieces{"1", "2", "3", "4"}));
  EXPECT_EQ(split(pre, "It's"), (Pieces{"It", "'s"}));
  EXPECT_EQ(split(pre, "(x)"), (Pieces{"(x", ")"}));
}

TEST(TokenizerPretokenizer, PiecesCoverTheText) {
  const std::string text =
      "  mixed\t\ttext\r\n with 123456 digits, \xF0\x9F\xA6\x99 emoji, \xE6\x88\x91 CJK, "
      "'quotes' and trailing spaces   ";
  for (const std::string& name : Pretokenizer::known_names()) {
    std::string joined;
    for (const auto piece : Pretokenizer(name).split(text)) {
      EXPECT_FALSE(piece.empty());
      joined += piece;
    }
    EXPECT_EQ(joined, text) << name;
  }
}

TEST(TokenizerPretokenizer, VeryLongRuns) {
  const std::string text = std::string(300000, ' ') + "x" + std::string(300000, '\n');
  for (const std::string& name : Pretokenizer::known_names()) {
    size_t total = 0;
    for (const auto piece : Pretokenizer(name).split(text)) total += piece.size();
    EXPECT_EQ(total, text.size()) << name;
  }
}

TEST(TokenizerPretokenizer, NamesAndErrors) {
  try {
    Pretokenizer pre("mystery-pre");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'mystery-pre'"), std::string::npos) << e.what();
  }
  // llama.cpp's rules for a BPE vocabulary whose pre-tokenizer is "default" (or not named).
  EXPECT_EQ(split(Pretokenizer("default"), "x+=1234;"), (Pieces{"x", "+=", "123", "4", ";"}));
  EXPECT_EQ(Pretokenizer::name_for_regex(
                R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"),
            "gpt-2");
  EXPECT_EQ(Pretokenizer::name_for_regex("\\w+"), std::nullopt);
}

}  // namespace
}  // namespace ep
