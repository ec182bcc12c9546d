// Tokenizer tests: llama.cpp's reference vectors (Hugging Face ids) for the Llama SentencePiece,
// GPT-2, DeepSeek LLM and StarCoder BPE vocabularies, decoding, streaming, special tokens and the
// GGUF round trip.
#include "tokenizer/tokenizer.h"
#include "core/error.h"
#include "model/gguf.h"
#include "test_util.h"
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <random>
#include <sstream>
#include <thread>

namespace ep {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::filesystem::path vocab_path(const std::string& name) {
  return test::fixtures_dir() / "tokenizer" / name;
}

// <name>.inp holds the strings separated by "\n__ggml_vocab_test__\n" (also after the last one);
// <name>.out one line of space-separated ids per string.
std::vector<Case> load_cases(const std::string& name) {
  const std::string inp = test::read_file(vocab_path(name + ".inp"));
  const std::string out = test::read_file(vocab_path(name + ".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t end = inp.find(sep, pos);
    if (end == std::string::npos) break;
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (Case& c : cases) {
    if (!std::getline(lines, line)) throw std::runtime_error("too few lines in " + name + ".out");
    std::istringstream ids(line);
    for (int32_t id = 0; ids >> id;) c.ids.push_back(id);
  }
  return cases;
}

std::string ids_string(const std::vector<int32_t>& ids) {
  std::string s;
  for (const int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

void expect_cases(const Tokenizer& tok, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const auto ids = tok.encode(c.text, /*add_bos=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids_string(ids), ids_string(c.ids)) << "text: '" << c.text << "'";
  }
}

class VocabFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabFixture, MatchesReferenceIds) {
  const auto file = GgufFile::open(vocab_path(GetParam()));
  const auto tok = Tokenizer::from_gguf(*file);
  const auto cases = load_cases(GetParam());
  ASSERT_EQ(cases.size(), 46u);
  expect_cases(*tok, cases);
}

TEST_P(VocabFixture, DecodeRoundTrips) {
  const auto file = GgufFile::open(vocab_path(GetParam()));
  const auto tok = Tokenizer::from_gguf(*file);
  for (const Case& c : load_cases(GetParam())) {
    EXPECT_EQ(tok->decode(c.ids), c.text);
    // With BOS, skipping specials gives the same text.
    const auto with_bos = tok->encode(c.text, /*add_bos=*/true, false);
    EXPECT_EQ(tok->decode(with_bos, /*skip_special=*/true), c.text);
  }
}

TEST_P(VocabFixture, StreamingEqualsDecode) {
  const auto file = GgufFile::open(vocab_path(GetParam()));
  const auto tok = Tokenizer::from_gguf(*file);
  for (const Case& c : load_cases(GetParam())) {
    StreamingDetokenizer stream(*tok);
    std::string text;
    for (const int32_t id : c.ids) {
      const std::string part = stream.push(id);
      // Every piece handed out is complete UTF-8 on its own.
      EXPECT_TRUE(is_valid_utf8(part));
      text += part;
    }
    text += stream.flush();
    EXPECT_EQ(text, c.text);
  }
}

TEST_P(VocabFixture, GgufWriteReadRoundTrip) {
  const auto file = GgufFile::open(vocab_path(GetParam()));
  const auto tok = Tokenizer::from_gguf(*file);
  test::ScratchDir dir;
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("llama"));
  tok->vocab().write_to_gguf(writer);
  writer.write(dir / "vocab.gguf");
  const auto file2 = GgufFile::open(dir / "vocab.gguf");
  const auto tok2 = Tokenizer::from_gguf(*file2);
  const Vocab& a = tok->vocab();
  const Vocab& b = tok2->vocab();
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.pre, b.pre);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.scores, b.scores);
  EXPECT_EQ(a.types, b.types);
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.bos, b.bos);
  EXPECT_EQ(a.eos, b.eos);
  EXPECT_EQ(a.unk, b.unk);
  EXPECT_EQ(a.pad, b.pad);
  EXPECT_EQ(a.add_bos, b.add_bos);
  EXPECT_EQ(a.add_eos, b.add_eos);
  EXPECT_EQ(a.add_space_prefix, b.add_space_prefix);
  expect_cases(*tok2, load_cases(GetParam()));
}

// Every ggml-vocab-*.gguf fixture: Llama SentencePiece, and byte-level BPE with the gpt-2,
// deepseek-llm and starcoder pre-tokenizers.
INSTANTIATE_TEST_SUITE_P(Tokenizer, VocabFixture,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf",
                                           "ggml-vocab-deepseek-llm.gguf",
                                           "ggml-vocab-starcoder.gguf"),
                         [](const auto& param_info) {
                           // "ggml-vocab-deepseek-llm.gguf" -> "DeepseekLlm"
                           std::string name;
                           bool upper = true;
                           for (const char c : param_info.param.substr(11)) {
                             if (c == '.') break;
                             if (c == '-') {
                               upper = true;
                               continue;
                             }
                             name += upper ? char(std::toupper(uint8_t(c))) : c;
                             upper = false;
                           }
                           return name;
                         });

// --- Behaviour of the facade, on the two reference vocabularies --------------------------------

const Tokenizer& llama() {
  static const auto file = GgufFile::open(vocab_path("ggml-vocab-llama-spm.gguf"));
  static const auto tok = Tokenizer::from_gguf(*file);
  return *tok;
}

const Tokenizer& gpt2() {
  static const auto file = GgufFile::open(vocab_path("ggml-vocab-gpt-2.gguf"));
  static const auto tok = Tokenizer::from_gguf(*file);
  return *tok;
}

using Ids = std::vector<int32_t>;

TEST(Tokenizer, InvalidUtf8IsAClearError) {
  for (const std::string bad :
       {"\xff", "abc\xE2\x82", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
        "a\x80"
        "b"}) {
    for (const Tokenizer* tok : {&llama(), &gpt2()}) {
      try {
        tok->encode(bad, false, false);
        ADD_FAILURE() << "accepted invalid UTF-8";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not valid UTF-8 (byte offset"), std::string::npos)
            << e.what();
      }
    }
  }
}

TEST(Tokenizer, BosAndDefaults) {
  EXPECT_TRUE(llama().add_bos_default());
  EXPECT_EQ(llama().bos(), 1);
  EXPECT_EQ(llama().eos(), 2);
  EXPECT_EQ(llama().n_vocab(), 32000);
  EXPECT_EQ(llama().encode("Hello", true, false), (Ids{1, 15043}));
  EXPECT_EQ(llama().encode("", true, false), (Ids{1}));
  EXPECT_EQ(llama().encode("", false, false), (Ids{}));
  EXPECT_FALSE(gpt2().add_bos_default());
  EXPECT_EQ(gpt2().bos(), 50256);
  EXPECT_EQ(gpt2().n_vocab(), 50257);
  EXPECT_EQ(gpt2().encode("Hello", true, false), (Ids{50256, 15496}));
}

TEST(Tokenizer, SpecialTokensAreParsedOnlyOnRequest) {
  // After a special token SentencePiece text gets its space prefix again (as llama.cpp does).
  EXPECT_EQ(llama().encode("<s>Hello</s>", false, true), (Ids{1, 15043, 2}));
  const Ids plain = llama().encode("<s>Hello</s>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(llama().decode(plain), "<s>Hello</s>");

  EXPECT_EQ(gpt2().encode("a<|endoftext|>b", false, true), (Ids{64, 50256, 65}));
  const Ids text = gpt2().encode("a<|endoftext|>b", false, false);
  EXPECT_EQ(std::count(text.begin(), text.end(), 50256), 0);
  EXPECT_EQ(gpt2().decode(text), "a<|endoftext|>b");
}

TEST(Tokenizer, DecodeAndPieces) {
  EXPECT_EQ(llama().decode(Ids{1, 15043, 2}), "<s> Hello</s>");
  EXPECT_EQ(llama().decode(Ids{1, 15043, 2}, /*skip_special=*/true), "Hello");
  EXPECT_EQ(llama().decode(Ids{15043, 3186}), "Hello world");  // the prefix space is dropped
  EXPECT_EQ(llama().decode(Ids{29871, 15043}), " Hello");      // ... but only that one
  EXPECT_EQ(llama().token_to_piece(15043), " Hello");
  EXPECT_EQ(llama().token_to_piece(13), "\n");  // <0x0A>
  EXPECT_EQ(llama().token_to_piece(1), "<s>");
  EXPECT_EQ(gpt2().token_to_piece(18435), " Hello");
  EXPECT_EQ(gpt2().token_to_piece(198), "\n");
  EXPECT_EQ(gpt2().decode(Ids{50256, 15496}, true), "Hello");
  EXPECT_THROW(llama().decode(Ids{32000}), Error);
  EXPECT_THROW(llama().decode(Ids{-1}), Error);
  EXPECT_THROW(gpt2().token_to_piece(50257), Error);
}

TEST(Tokenizer, EndOfGenerationAndLookup) {
  EXPECT_TRUE(llama().is_eog(2));
  EXPECT_FALSE(llama().is_eog(1));
  EXPECT_FALSE(llama().is_eog(15043));
  EXPECT_FALSE(llama().is_eog(-1));
  EXPECT_FALSE(llama().is_eog(1 << 20));
  EXPECT_TRUE(gpt2().is_eog(50256));
  EXPECT_EQ(llama().find_token("\xE2\x96\x81Hello"), 15043);
  EXPECT_EQ(llama().find_token("<s>"), 1);
  EXPECT_EQ(llama().find_token("<0x0A>"), 13);
  EXPECT_EQ(llama().find_token("no-such-token-here"), std::nullopt);
  EXPECT_EQ(gpt2().find_token("Hello"), 15496);
}

TEST(Tokenizer, StreamingHoldsBackPartialCharacters) {
  // Llama: U+1F999 (4 bytes) as byte tokens <0xF0><0x9F><0xA6><0x99> = 243 162 169 156.
  StreamingDetokenizer s(llama());
  EXPECT_EQ(s.push(15043), "Hello");
  EXPECT_EQ(s.push(29871), " ");
  EXPECT_EQ(s.push(243), "");
  EXPECT_EQ(s.push(162), "");
  EXPECT_EQ(s.push(169), "");
  EXPECT_EQ(s.push(156), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(s.flush(), "");
  // An unfinished character at the end of the stream becomes U+FFFD; a byte that can never start
  // a character comes out as U+FFFD at once.
  EXPECT_EQ(s.push(3 + 0xE2), "");
  EXPECT_EQ(s.push(3 + 0x82), "");
  EXPECT_EQ(s.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(s.push(3 + 0xFF), "\xEF\xBF\xBD");
  EXPECT_EQ(s.push(3 + 0xE2), "");
  EXPECT_EQ(s.push(3 + 'A'),
            "\xEF\xBF\xBD"
            "A");

  // GPT-2: " 🦙" is " \xF0\x9F" + "\xA6" + "\x99" (12520 99 247).
  StreamingDetokenizer g(gpt2());
  EXPECT_EQ(g.push(428), " this");
  EXPECT_EQ(g.push(12520), " ");
  EXPECT_EQ(g.push(99), "");
  EXPECT_EQ(g.push(247), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(g.push(13), ".");

  StreamingDetokenizer skip(llama(), /*skip_special=*/true);
  EXPECT_EQ(skip.push(1), "");
  EXPECT_EQ(skip.push(15043), "Hello");
  EXPECT_EQ(skip.push(2), "");
}

TEST(Tokenizer, LongInputs) {
  std::string spaces(100000, ' ');
  spaces += "x";
  const Ids ids = gpt2().encode(spaces, false, false);
  EXPECT_EQ(gpt2().decode(ids), spaces);
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  EXPECT_EQ(llama().decode(llama().encode(text, false, false)), text);
  const std::string word(50000, 'a');  // one long word: merging must not be quadratic
  EXPECT_EQ(gpt2().decode(gpt2().encode(word, false, false)), word);
  EXPECT_EQ(llama().decode(llama().encode(word, false, false)), word);
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  const std::string text = "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3";
  const Ids want_llama = llama().encode(text, true, true);
  const Ids want_gpt2 = gpt2().encode(text, true, true);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (llama().encode(text, true, true) != want_llama) ++mismatches;
        if (gpt2().encode(text, true, true) != want_gpt2) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, 0);
}

// A GGUF with only the given tokenizer keys.
std::unique_ptr<GgufFile> write_vocab_gguf(
    const test::ScratchDir& dir, const std::vector<std::pair<std::string, GgufValue>>& kv) {
  GgufWriter w;
  for (const auto& [k, v] : kv) w.set(k, v);
  w.write(dir / "v.gguf");
  return GgufFile::open(dir / "v.gguf");
}

TEST(Tokenizer, UnsupportedGgufVocabulariesAreClearErrors) {
  const auto expect_error = [](const GgufFile& file, const std::string& needle) {
    try {
      Tokenizer::from_gguf(file);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const auto tokens = GgufValue::string_array({"a", "b", "ab"});
  test::ScratchDir d1, d2, d3, d4, d5;
  expect_error(*write_vocab_gguf(d1, {{"tokenizer.ggml.model", GgufValue::string("bert")},
                                      {"tokenizer.ggml.tokens", tokens}}),
               "'bert'");
  expect_error(*write_vocab_gguf(d2, {{"tokenizer.ggml.model", GgufValue::string("gpt2")},
                                      {"tokenizer.ggml.pre", GgufValue::string("mystery")},
                                      {"tokenizer.ggml.tokens", tokens},
                                      {"tokenizer.ggml.merges", GgufValue::string_array({"a b"})}}),
               "'mystery'");
  expect_error(*write_vocab_gguf(d3, {{"general.architecture", GgufValue::string("llama")}}),
               "tokenizer.ggml.model");
  expect_error(*write_vocab_gguf(d4, {{"tokenizer.ggml.model", GgufValue::string("llama")},
                                      {"tokenizer.ggml.tokens", tokens},
                                      {"tokenizer.ggml.scores", GgufValue::f32_array({0, 0})}}),
               "2 token scores for 3 tokens");
  expect_error(*write_vocab_gguf(d5, {{"tokenizer.ggml.model", GgufValue::string("llama")},
                                      {"tokenizer.ggml.tokens", tokens},
                                      {"tokenizer.ggml.bos_token_id", GgufValue::u32(7)}}),
               "bos token id 7 is out of range");
}

TEST(Tokenizer, SpmWithoutByteTokensUsesUnknown) {
  Vocab v;
  v.kind = VocabKind::spm;
  v.tokens = {"<unk>",
              "\xE2\x96\x81",
              "a",
              "b",
              "\xE2\x96\x81"
              "a",
              "ab"};
  v.scores = {0, -1, -2, -3, -1.5f, -0.5f};
  v.types = {TokenType::unknown, TokenType::normal, TokenType::normal,
             TokenType::normal,  TokenType::normal, TokenType::normal};
  v.unk = 0;
  v.add_space_prefix = true;
  const Tokenizer tok(v);
  // "▁ab": "ab" (score -0.5) beats "▁a" (-1.5); "z" is unknown.
  EXPECT_EQ(tok.encode("ab", false, false), (Ids{1, 5}));
  EXPECT_EQ(tok.encode("azb", false, false), (Ids{4, 0, 3}));
  EXPECT_EQ(tok.decode(Ids{4, 0, 3}), "a<unk>b");
}

// Random text from a mix of scripts: decode(encode(text)) == text, and streaming the ids gives the
// same text in pieces that are each valid UTF-8.
TEST(Tokenizer, RandomTextRoundTrips) {
  const std::vector<char32_t> alphabet = {
      U' ',      U' ',          U'\n',         U'\t',        U'\r',     U'\0',     U'a',
      U'Z',      U'7',          U'\'',         U'!',         U'<',      U'>',      U'|',
      U'\u00E9', U'\u00DF',     U'\u00A0',     U'\u0301',    U'\u043F', U'\u0436', U'\u05D0',
      U'\u0663', U'\u0E01',     U'\u3000',     U'\u6211',    U'\u60F3', U'\uAC00', U'\uFFFD',
      U'\u2581', U'\U0001F999', U'\U0001F680', U'\U0010FFFF'};
  std::mt19937 rng(1234);
  for (const Tokenizer* tok : {&llama(), &gpt2()}) {
    for (int iter = 0; iter < 300; ++iter) {
      std::string text;
      const int len = int(rng() % 40);
      for (int i = 0; i < len; ++i) {
        const char32_t c = alphabet[rng() % alphabet.size()];
        // SentencePiece cannot round-trip a literal U+2581: it is its space marker.
        if (c != U'\u2581' || tok->vocab().kind == VocabKind::bpe) text += utf8_encode(c);
      }
      const Ids ids = tok->encode(text, false, false);
      ASSERT_EQ(tok->decode(ids), text) << "text: '" << text << "'";
      StreamingDetokenizer stream(*tok);
      std::string streamed;
      for (const int32_t id : ids) {
        const std::string part = stream.push(id);
        ASSERT_TRUE(is_valid_utf8(part));
        streamed += part;
      }
      streamed += stream.flush();
      ASSERT_EQ(streamed, text);
    }
  }
}

TEST(Tokenizer, StreamingRandomIdsIsAlwaysValidUtf8) {
  std::mt19937 rng(99);
  for (const Tokenizer* tok : {&llama(), &gpt2()}) {
    StreamingDetokenizer stream(*tok);
    for (int i = 0; i < 5000; ++i) {
      // Mostly byte-ish tokens, to provoke split and broken sequences.
      const int32_t id =
          (i % 3 == 0) ? int32_t(rng() % uint32_t(tok->n_vocab())) : int32_t(rng() % 300);
      ASSERT_TRUE(is_valid_utf8(stream.push(id))) << id;
    }
    ASSERT_TRUE(is_valid_utf8(stream.flush()));
  }
}

}  // namespace
}  // namespace ep
