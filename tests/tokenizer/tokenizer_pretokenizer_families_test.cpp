// The pre-tokenizer families beyond GPT-2, Llama-3 and Qwen2: each family's distinctive rules
// (digit groups, CJK runs, contractions, camel case, whitespace and newline runs, punctuation),
// every tokenizer.ggml.pre name and alias llama.cpp knows, and the error for an unknown one. The
// expected pieces apply the family's regexes to the text as a Hugging Face Sequence of Isolated
// Splits would (each regex within the pieces the previous ones left), as Python's `regex` module
// computes them.
#include "core/error.h"
#include "tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ep {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(const Pretokenizer& pre, std::string_view text) {
  Pieces out;
  for (const auto piece : pre.split(text)) out.emplace_back(piece);
  return out;
}

struct Example {
  std::string text;
  Pieces pieces;
};
struct Family {
  std::string name;
  std::vector<Example> examples;
};

// clang-format off
const std::vector<Family> kFamilies = {
  {"deepseek-llm",
   {
       {"Hello, World!\n  你好世界 12345 αβγ",
        {"Hello", ",", " World", "!", "\n", "  ", "你好世界", " ", "12345", " αβγ"}},
       {"I'm    here.\r\nOK 3.14",
        {"I", "'", "m", "   ", " here", ".", "\r", "\n", "OK", " ", "3", ".", "14"}},
       {"Führer Ωmega 한국어 🦙",
        {"F", "ü", "hrer", " Ω", "mega", " ", "한국어", " 🦙"}},
   }},
  {"deepseek-coder",
   {
       {"x+=12345; // ok?",
        {"x", "+=", "1", "2", "3", "4", "5", ";", " //", " ok", "?"}},
       {"Hi\n\n你好 Ünïcode",
        {"Hi", "\n", "\n", "你好", " Ünïcode"}},
   }},
  {"deepseek-v3",
   {
       {"1234567 カタカナ漢字",
        {"123", "456", "7", " ", "カタカナ漢字"}},
       {"(foo) .bar don't",
        {"(foo", ")", " .", "bar", " don", "'t"}},
   }},
  {"starcoder",
   {
       {"abc 1234 x",
        {"abc", " ", "1", "2", "3", "4", " x"}},
       {"I've  got 2 cats!!",
        {"I", "'ve", " ", " got", " ", "2", " cats", "!!"}},
       {"\t\n  end  ",
        {"\t\n ", " end", "  "}},
   }},
  {"falcon",
   {
       {"a$+b==c 1234567",
        {"a", "$+", "b", "==", "c", " ", "123", "456", "7"}},
       {"Hello, world!!! 12 345",
        {"Hello", ",", " world", "!!!", " 12", " ", "345"}},
   }},
  {"poro-chat",
   {
       {"Hei, maailma! (x|y) 12.5",
        {"Hei", ",", " maailma", "! (", "x", "|", "y", ")", " 12", ".", "5"}},
       {"a…b。c  d",
        {"a", "…", "b", "。", "c", " ", " d"}},
   }},
  {"viking",
   {
       {"Hei 2024, maailma!",
        {"Hei", " ", "2", "0", "2", "4", ",", " maailma", "!"}},
   }},
  {"tekken",
   {
       {"HelloWorld XMLHttpRequest 123",
        {"Hello", "World", " XMLHttp", "Request", " ", "1", "2", "3"}},
       {"path/to/file\n\nend",
        {"path", "/to", "/file", "\n\n", "end"}},
   }},
  {"gpt-4o",
   {
       {"HelloWorld DON'T don't 1234567",
        {"Hello", "World", " DON'T", " don't", " ", "123", "456", "7"}},
       {"a/b/\n\nc",
        {"a", "/b", "/\n\n", "c"}},
   }},
  {"chameleon",
   {
       {"<sentinel:12>IMGIMGABZ go    fast  x\t1234",
        {"<", "sentinel", ":", "1", "2", ">", "IMGIMGABZ", " go", "    ", "fast", "  ", "x", "\t", "1", "2", "3", "4"}},
   }},
  {"superbpe",
   {
       {"1234567 dollars, not 89",
        {"1", "234", "567", " dollars, not ", "89"}},
       {"in the end",
        {"in the end"}},
   }},
  {"bailingmoe",
   {
       {"It'S fine\n\nok!!\n",
        {"It", "'S", " fine", "\n\n", "ok", "!!\n"}},
       {"x 12",
        {"x", " ", "1", "2"}},
   }},
  {"seed-coder",
   {
       {"hi!!\n\nthere 123",
        {"hi", "!!", "\n\n", "there", " ", "1", "2", "3"}},
       {"It'S",
        {"It", "'S"}},
   }},
  {"default",
   {
       {"Hello, world!!! 12 3456 x$y",
        {"Hello", ",", " world", "!!!", " ", "12", " ", "345", "6", " x", "$", "y"}},
   }},
  {"dbrx",
   {
       {"I'M 1234567\n\n",
        {"I", "'M", " ", "123", "456", "7", "\n\n"}},
   }},
};
// clang-format on

TEST(TokenizerPretokenizerFamilies, SplitByTheirRegexes) {
  for (const Family& family : kFamilies) {
    const Pretokenizer pre(family.name);
    for (const Example& e : family.examples) {
      EXPECT_EQ(split(pre, e.text), e.pieces) << family.name << ": '" << e.text << "'";
    }
  }
}

// The distinctive rules, spelled out.
TEST(TokenizerPretokenizerFamilies, DigitGroups) {
  // One digit at a time.
  for (const char* name : {"starcoder", "deepseek-coder", "qwen2", "tekken", "viking"}) {
    EXPECT_EQ(split(Pretokenizer(name), "1234"), (Pieces{"1", "2", "3", "4"})) << name;
  }
  // Groups of up to three from the left.
  for (const char* name : {"llama-bpe", "dbrx", "gpt-4o", "deepseek-v3"}) {
    EXPECT_EQ(split(Pretokenizer(name), "1234567"), (Pieces{"123", "456", "7"})) << name;
  }
  // Groups of three from the right (SuperBPE).
  EXPECT_EQ(split(Pretokenizer("superbpe"), "1234567"), (Pieces{"1", "234", "567"}));
  EXPECT_EQ(split(Pretokenizer("superbpe"), "123456"), (Pieces{"123", "456"}));
  // Whole runs (GPT-2, DeepSeek LLM).
  EXPECT_EQ(split(Pretokenizer("gpt-2"), "x 1234567"), (Pieces{"x", " 1234567"}));
  EXPECT_EQ(split(Pretokenizer("deepseek-llm"), "x 1234567"), (Pieces{"x", " ", "1234567"}));
  // Falcon: whole runs, then ASCII digits cut into threes from the left.
  EXPECT_EQ(split(Pretokenizer("falcon"), "x 1234567"), (Pieces{"x", " ", "123", "456", "7"}));
}

TEST(TokenizerPretokenizerFamilies, Contractions) {
  // Case-insensitive contractions, cut from the word (Llama-3 regex family).
  EXPECT_EQ(split(Pretokenizer("dbrx"), "YOU'RE"), (Pieces{"YOU", "'RE"}));
  EXPECT_EQ(split(Pretokenizer("seed-coder"), "we'LL"), (Pieces{"we", "'LL"}));
  // Case-sensitive ones (GPT-2 regex family): upper case stays apart.
  EXPECT_EQ(split(Pretokenizer("starcoder"), "we'LL"), (Pieces{"we", "'", "LL"}));
  // GPT-4o keeps the contraction with its word.
  EXPECT_EQ(split(Pretokenizer("gpt-4o"), "we'LL go"), (Pieces{"we'LL", " go"}));
}

TEST(TokenizerPretokenizerFamilies, WhitespaceAndNewlines) {
  // Llama-3 family: a run of spaces gives all but the last, which goes with the next word.
  EXPECT_EQ(split(Pretokenizer("dbrx"), "a   b\n\n\nc"), (Pieces{"a", "  ", " b", "\n\n\n", "c"}));
  // BailingMoE: a whitespace run ending in a newline is one piece; the spaces after it are not.
  EXPECT_EQ(split(Pretokenizer("bailingmoe"), "a\n\n  b"), (Pieces{"a", "\n\n", " ", " b"}));
  EXPECT_EQ(split(Pretokenizer("bailingmoe"), "I'D"), (Pieces{"I", "'D"}));
  // DeepSeek: every newline is a piece of its own; trailing whitespace is one piece.
  EXPECT_EQ(split(Pretokenizer("deepseek-llm"), "a\n\nb   "),
            (Pieces{"a", "\n", "\n", "b", "   "}));
  // Chameleon: tabs, newlines, and runs of two or four spaces.
  EXPECT_EQ(split(Pretokenizer("chameleon"), "a     b"), (Pieces{"a", "    ", " b"}));
  // SuperBPE keeps words together across spaces.
  EXPECT_EQ(split(Pretokenizer("superbpe"), "by the way"), (Pieces{"by the way"}));
}

TEST(TokenizerPretokenizerFamilies, CjkAndEmoji) {
  const std::string cjk = "我想吃苹果";
  EXPECT_EQ(split(Pretokenizer("deepseek-llm"), "ab" + cjk), (Pieces{"ab", cjk}));
  EXPECT_EQ(split(Pretokenizer("deepseek-coder"), cjk + "!"), (Pieces{cjk, "!"}));
  // Llama-3 family: CJK characters are letters, joined with the preceding punctuation.
  EXPECT_EQ(split(Pretokenizer("dbrx"), "(" + cjk), (Pieces{"(" + cjk}));
  // Emoji are neither letters nor digits: a punctuation-like run.
  EXPECT_EQ(split(Pretokenizer("tekken"), "hi \xF0\x9F\xA6\x99\xF0\x9F\xA6\x99!"),
            (Pieces{"hi", " \xF0\x9F\xA6\x99\xF0\x9F\xA6\x99!"}));
}

TEST(TokenizerPretokenizerFamilies, CamelCase) {
  for (const char* name : {"tekken", "gpt-4o", "llama4"}) {
    EXPECT_EQ(split(Pretokenizer(name), "parseJSONValue"), (Pieces{"parse", "JSONValue"})) << name;
    EXPECT_EQ(split(Pretokenizer(name), "HelloWorld"), (Pieces{"Hello", "World"})) << name;
  }
}

TEST(TokenizerPretokenizerFamilies, Punctuation) {
  // BLOOM / Poro: anything but whitespace and the listed punctuation is a word.
  EXPECT_EQ(split(Pretokenizer("bloom"), "a-b_c.d"), (Pieces{"a-b_c", ".", "d"}));
  // Falcon: punctuation and ASCII symbol runs first.
  EXPECT_EQ(split(Pretokenizer("falcon"), "x<=y"), (Pieces{"x", "<=", "y"}));
  // Seed-Coder: punctuation runs never take the newlines after them; Llama-3's do.
  EXPECT_EQ(split(Pretokenizer("seed-coder"), "x;\n"), (Pieces{"x", ";", "\n"}));
  EXPECT_EQ(split(Pretokenizer("dbrx"), "x;\n"), (Pieces{"x", ";\n"}));
}

TEST(TokenizerPretokenizerFamilies, EveryNameAndAlias) {
  const std::vector<std::string> names = Pretokenizer::known_names();
  for (const char* name :
       {"gpt-2",      "llama-bpe",      "llama3",    "llama-v3",    "qwen2",        "deepseek-llm",
        "starcoder",  "deepseek-coder", "falcon",    "refact",      "command-r",    "phi-2",
        "tekken",     "smaug-bpe",      "poro-chat", "chatglm-bpe", "viking",       "jais",
        "mpt",        "olmo",           "dbrx",      "bloom",       "gpt3-finnish", "exaone",
        "chameleon",  "minerva-7b",     "megrez",    "gpt-4o",      "superbpe",     "trillion",
        "bailingmoe", "llama4",         "pixtral",   "seed-coder",  "stablelm2",    "default"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
    EXPECT_NO_THROW(Pretokenizer{name}) << name;
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  // Llama-3 and Tekken look whole words up first; the other users of Llama-3's regex do not.
  EXPECT_TRUE(Pretokenizer("pixtral").ignore_merges());
  EXPECT_TRUE(Pretokenizer("tekken").ignore_merges());
  EXPECT_FALSE(Pretokenizer("smaug-bpe").ignore_merges());
  EXPECT_FALSE(Pretokenizer("chatglm-bpe").ignore_merges());
  // Aliases split as their family does.
  const std::string text = "Hello 1234 world's!\n\n  x";
  const auto same = [&](const char* a, const char* b) {
    EXPECT_EQ(split(Pretokenizer(a), text), split(Pretokenizer(b), text)) << a << " vs " << b;
  };
  same("refact", "starcoder");
  same("command-r", "starcoder");
  same("exaone", "starcoder");
  same("minerva-7b", "starcoder");
  same("phi-2", "gpt-2");
  same("jais", "gpt-2");
  same("mpt", "gpt-2");
  same("olmo", "gpt-2");
  same("trillion", "gpt-2");
  same("megrez", "qwen2");
  same("stablelm2", "qwen2");
  same("smaug-bpe", "llama-bpe");
  same("chatglm-bpe", "llama-bpe");
  same("pixtral", "llama-bpe");
  same("bloom", "poro-chat");
  same("gpt3-finnish", "poro-chat");
  same("llama4", "gpt-4o");
}

TEST(TokenizerPretokenizerFamilies, UnknownNameListsTheKnownOnes) {
  try {
    Pretokenizer pre("deepseek-llm-v9");
    ADD_FAILURE();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'deepseek-llm-v9'"), std::string::npos) << what;
    EXPECT_NE(what.find("deepseek-llm, "), std::string::npos) << what;
    EXPECT_NE(what.find("starcoder"), std::string::npos) << what;
  }
  EXPECT_THROW(Pretokenizer(""), Error);
}

}  // namespace
}  // namespace ep
