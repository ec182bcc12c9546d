// Tokenizers from Hugging Face directories: tokenizer.model (SentencePiece) checked against
// libsentencepiece itself, tokenizer.json (byte-level BPE), and agreement with the GGUF that our
// converter writes (Vocab::write_to_gguf).
#include "core/error.h"
#include "model/gguf.h"
#include "test_util.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <sstream>

namespace ep {
namespace {

using nlohmann::json;

const std::vector<std::string> kSentences = {
    "Hello world",
    " leading space and trailing space ",
    "Tabs\tand  double  spaces   kept",
    "New\nlines\n\nand blank ones",
    "The café serves crème brûlée.",
    "Привет, мир! Это тест.",
    "Emoji 🦙🚀 and CJK 我想在苹果工作 fall back to bytes",
    "Numbers 42, 1234, 3.14159 and 2024-05-17",
    "def main():\n    print(\"hello\")\n    return 0",
    "",
    " ",
    "   ",
    "a",
    "∑ ∫ ≈ ≠ unusual symbols ∀x∈ℝ",
    "The quick brown fox jumps over the lazy dog.",
};

std::filesystem::path tiny_spm_dir() {
  return test::fixtures_dir() / "tokenizer" / "spm_tiny";
}

std::unique_ptr<Tokenizer> gguf_round_trip(const Tokenizer& tok, const test::ScratchDir& dir) {
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("llama"));
  tok.vocab().write_to_gguf(writer);
  writer.write(dir / "tok.gguf");
  const auto file = GgufFile::open(dir / "tok.gguf");
  return Tokenizer::from_gguf(*file);
}

std::unique_ptr<sentencepiece::SentencePieceProcessor> load_sp(const std::string& serialized) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(serialized);
  if (!status.ok()) throw std::runtime_error("sentencepiece: " + status.ToString());
  return sp;
}

std::vector<int32_t> sp_encode(const sentencepiece::SentencePieceProcessor& sp,
                               const std::string& text) {
  std::vector<int> ids;
  const auto status = sp.Encode(text, &ids);
  if (!status.ok()) throw std::runtime_error("sentencepiece: " + status.ToString());
  return {ids.begin(), ids.end()};
}

TEST(TokenizerHf, TinySentencePieceModelMatchesLibSentencePiece) {
  const auto tok = Tokenizer::from_hf_dir(tiny_spm_dir());
  const auto sp = load_sp(test::read_file(tiny_spm_dir() / "tokenizer.model"));
  for (const std::string& s : kSentences) {
    EXPECT_EQ(tok->encode(s, false, false), sp_encode(*sp, s)) << "text: '" << s << "'";
  }
}

TEST(TokenizerHf, TinySentencePieceModelPiecesMatchLibSentencePiece) {
  const auto model = SentencePieceModel::load(tiny_spm_dir() / "tokenizer.model");
  const auto sp = load_sp(test::read_file(tiny_spm_dir() / "tokenizer.model"));
  ASSERT_EQ(int(model.pieces.size()), sp->GetPieceSize());
  for (int i = 0; i < sp->GetPieceSize(); ++i) {
    const auto& p = model.pieces[size_t(i)];
    EXPECT_EQ(p.text, sp->IdToPiece(i));
    EXPECT_EQ(p.score, sp->GetScore(i));
    EXPECT_EQ(p.type == TokenType::control, sp->IsControl(i)) << i;
    EXPECT_EQ(p.type == TokenType::unknown, sp->IsUnknown(i)) << i;
    EXPECT_EQ(p.type == TokenType::byte, sp->IsByte(i)) << i;
    EXPECT_EQ(p.type == TokenType::unused, sp->IsUnused(i)) << i;
  }
  EXPECT_EQ(model.model_type, SentencePieceModel::bpe);
  EXPECT_EQ(model.unk_id, sp->unk_id());
  EXPECT_EQ(model.bos_id, sp->bos_id());
  EXPECT_EQ(model.eos_id, sp->eos_id());
  EXPECT_EQ(model.pad_id, sp->pad_id());
  EXPECT_TRUE(model.byte_fallback);
  EXPECT_TRUE(model.add_dummy_prefix);
  EXPECT_EQ(model.normalizer_name, "identity");
}

TEST(TokenizerHf, TinySentencePieceModelSettingsAndAddedTokens) {
  const auto tok = Tokenizer::from_hf_dir(tiny_spm_dir());
  const Vocab& v = tok->vocab();
  EXPECT_EQ(v.kind, VocabKind::spm);
  EXPECT_EQ(v.size(), 402);
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.eos, 2);
  EXPECT_EQ(v.unk, 0);
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_TRUE(v.add_space_prefix);
  EXPECT_EQ(v.types[400], TokenType::control);
  EXPECT_EQ(v.types[401], TokenType::user_defined);
  EXPECT_TRUE(tok->is_eog(400));  // <|im_end|>
  EXPECT_TRUE(tok->is_eog(2));

  // The user-defined token is always recognised; the control token only with parse_special.
  const auto plain = tok->encode("<think>hi<|im_end|>", true, false);
  EXPECT_EQ(plain[0], 1);
  EXPECT_EQ(plain[1], 401);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 400), 0);
  const auto special = tok->encode("<think>hi<|im_end|>", true, true);
  EXPECT_EQ(special.back(), 400);
  EXPECT_EQ(tok->decode(special), "<s><think> hi<|im_end|>");
  EXPECT_EQ(tok->decode(special, /*skip_special=*/true), "<think> hi");
}

TEST(TokenizerHf, TinySentencePieceModelAgreesWithItsGguf) {
  const auto tok = Tokenizer::from_hf_dir(tiny_spm_dir());
  test::ScratchDir dir;
  const auto from_gguf = gguf_round_trip(*tok, dir);
  for (const std::string& s : kSentences) {
    for (const bool parse_special : {false, true}) {
      EXPECT_EQ(tok->encode(s + "<|im_end|><think>", true, parse_special),
                from_gguf->encode(s + "<|im_end|><think>", true, parse_special))
          << "text: '" << s << "'";
    }
  }
  EXPECT_EQ(from_gguf->vocab().tokens, tok->vocab().tokens);
  EXPECT_EQ(from_gguf->vocab().types, tok->vocab().types);
  EXPECT_EQ(from_gguf->vocab().scores, tok->vocab().scores);
}

// --- The reference vocabularies rewritten as Hugging Face files -------------------------------

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> load_cases(const std::string& name) {
  const auto base = test::fixtures_dir() / "tokenizer" / name;
  const std::string inp = test::read_file(base.string() + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0, end; (end = inp.find(sep, pos)) != std::string::npos;
       pos = end + sep.size()) {
    cases.push_back({inp.substr(pos, end - pos), {}});
  }
  std::istringstream lines(test::read_file(base.string() + ".out"));
  std::string line;
  for (Case& c : cases) {
    std::getline(lines, line);
    std::istringstream ids(line);
    for (int32_t id = 0; ids >> id;) c.ids.push_back(id);
  }
  return cases;
}

// A minimal protobuf writer for sentencepiece.ModelProto.
void put_varint(std::string& out, uint64_t v) {
  do {
    out += char((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
    v >>= 7;
  } while (v);
}
void put_int(std::string& out, uint32_t field, int64_t v) {
  put_varint(out, field << 3);
  put_varint(out, uint64_t(v));
}
void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_varint(out, (field << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_float(std::string& out, uint32_t field, float f) {
  put_varint(out, (field << 3) | 5);
  char raw[4];
  std::memcpy(raw, &f, 4);
  out.append(raw, 4);
}

std::string sentencepiece_model_from(const Vocab& v) {
  std::string proto;
  for (int32_t i = 0; i < v.size(); ++i) {
    std::string piece;
    put_bytes(piece, 1, v.tokens[size_t(i)]);
    put_float(piece, 2, v.scores[size_t(i)]);
    put_int(piece, 3, int(v.types[size_t(i)]));
    put_bytes(proto, 1, piece);
  }
  std::string trainer;
  put_int(trainer, 3, 2);  // BPE
  put_int(trainer, 4, v.size());
  put_int(trainer, 35, 1);  // byte_fallback
  put_int(trainer, 40, v.unk);
  put_int(trainer, 41, v.bos);
  put_int(trainer, 42, v.eos);
  put_int(trainer, 43, v.pad);  // -1: a 10-byte varint
  put_bytes(proto, 2, trainer);
  std::string normalizer;
  put_bytes(normalizer, 1, "identity");
  put_int(normalizer, 3, v.add_space_prefix);
  put_int(normalizer, 4, 0);  // remove_extra_whitespaces
  put_int(normalizer, 5, 1);  // escape_whitespaces
  put_bytes(proto, 3, normalizer);
  return proto;
}

TEST(TokenizerHf, LlamaVocabAsTokenizerModelMatchesReferenceAndLibSentencePiece) {
  const auto gguf =
      GgufFile::open(test::fixtures_dir() / "tokenizer" / "ggml-vocab-llama-spm.gguf");
  const Vocab vocab = Vocab::from_gguf(*gguf);
  test::ScratchDir dir;
  const std::string proto = sentencepiece_model_from(vocab);
  test::write_file(dir / "tokenizer.model", proto);
  test::write_file(dir / "tokenizer_config.json",
                   R"({"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>",
                       "eos_token": "</s>", "unk_token": "<unk>"})");
  const auto tok = Tokenizer::from_hf_dir(dir.path());
  const auto sp = load_sp(proto);
  for (const Case& c : load_cases("ggml-vocab-llama-spm.gguf")) {
    EXPECT_EQ(tok->encode(c.text, false, false), c.ids) << "text: '" << c.text << "'";
    EXPECT_EQ(sp_encode(*sp, c.text), c.ids) << "libsentencepiece, text: '" << c.text << "'";
  }
  const Vocab& v = tok->vocab();
  EXPECT_EQ(v.tokens, vocab.tokens);
  EXPECT_EQ(v.scores, vocab.scores);
  EXPECT_EQ(v.types, vocab.types);
  EXPECT_EQ(v.bos, vocab.bos);
  EXPECT_EQ(v.eos, vocab.eos);
  EXPECT_EQ(v.unk, vocab.unk);
  EXPECT_EQ(v.add_bos, vocab.add_bos);
  EXPECT_EQ(v.add_space_prefix, vocab.add_space_prefix);
}

json gpt2_tokenizer_json(const Vocab& v) {
  json vocab = json::object();
  json added = json::array();
  for (int32_t i = 0; i < v.size(); ++i) {
    vocab[v.tokens[size_t(i)]] = i;
    if (v.types[size_t(i)] == TokenType::control) {
      added.push_back({{"id", i},
                       {"content", v.tokens[size_t(i)]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", true},
                       {"special", true}});
    }
  }
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", true}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", byte_level},
          {"post_processor", byte_level},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", ""},
            {"end_of_word_suffix", ""},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", v.merges}}}};
}

TEST(TokenizerHf, Gpt2VocabAsTokenizerJsonMatchesReferenceAndItsGguf) {
  const auto gguf = GgufFile::open(test::fixtures_dir() / "tokenizer" / "ggml-vocab-gpt-2.gguf");
  const Vocab vocab = Vocab::from_gguf(*gguf);
  test::ScratchDir dir;
  test::write_file(dir / "tokenizer.json", gpt2_tokenizer_json(vocab).dump());
  test::write_file(dir / "tokenizer_config.json",
                   R"({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                       "unk_token": "<|endoftext|>", "add_prefix_space": false})");
  const auto tok = Tokenizer::from_hf_dir(dir.path());
  test::ScratchDir gguf_dir;
  const auto tok2 = gguf_round_trip(*tok, gguf_dir);
  for (const Case& c : load_cases("ggml-vocab-gpt-2.gguf")) {
    EXPECT_EQ(tok->encode(c.text, false, false), c.ids) << "text: '" << c.text << "'";
    EXPECT_EQ(tok2->encode(c.text, false, false), c.ids) << "via GGUF, text: '" << c.text << "'";
  }
  EXPECT_EQ(tok->vocab().pre, "gpt-2");
  EXPECT_EQ(tok->vocab().merges, vocab.merges);
  EXPECT_EQ(tok->vocab().tokens, vocab.tokens);
  EXPECT_EQ(tok->vocab().types, vocab.types);
  EXPECT_EQ(tok->bos(), 50256);
  EXPECT_EQ(tok->eos(), 50256);
  EXPECT_FALSE(tok->add_bos_default());
}

// A small byte-level vocabulary: the 256 byte characters plus a few merges.
json tiny_bpe_json(const json& pre_tokenizer, const json& post_processor) {
  json vocab = json::object();
  const auto byte_char = [](int b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    int n = 0;
    for (int i = 0; i < b; ++i) {
      n += !((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE);
    }
    const char32_t cp = printable ? char32_t(b) : char32_t(0x100 + n);
    std::string s;
    if (cp < 0x80) {
      s += char(cp);
    } else {
      s += char(0xC0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3F));
    }
    return s;
  };
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;  // token id = byte value
  const std::vector<std::string> merges = {"h e",   "l l",    "he ll",   "hell o", "Ġ w", "o r",
                                           "Ġw or", "Ġwor l", "Ġworl d", "1 2",    "12 3"};
  int next = 256;
  for (const auto& m : merges) {
    const auto sp = m.find(' ');
    vocab[m.substr(0, sp) + m.substr(sp + 1)] = next++;
  }
  vocab["<|begin_of_text|>"] = next;
  const json added =
      json::array({{{"id", next}, {"content", "<|begin_of_text|>"}, {"special", true}},
                   {{"id", next + 1}, {"content", "<|im_end|>"}, {"special", true}}});
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", false}};
  json merges_json = json::array();
  for (const auto& m : merges) {  // the newer [left, right] form
    const auto sp = m.find(' ');
    merges_json.push_back({m.substr(0, sp), m.substr(sp + 1)});
  }
  return {{"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", post_processor},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"}, {"ignore_merges", true}, {"vocab", vocab}, {"merges", merges_json}}}};
}

json split_then_byte_level(const std::string& regex) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", regex}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            {{"type", "ByteLevel"},
             {"add_prefix_space", false},
             {"trim_offsets", true},
             {"use_regex", false}}}}};
}

constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

TEST(TokenizerHf, Llama3StyleTokenizerJson) {
  const json post = {{"type", "Sequence"},
                     {"processors",
                      {{{"type", "ByteLevel"}},
                       {{"type", "TemplateProcessing"},
                        {"single",
                         {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}}}};
  test::ScratchDir dir;
  test::write_file(dir / "tokenizer.json",
                   tiny_bpe_json(split_then_byte_level(kLlama3Regex), post).dump());
  test::write_file(dir / "tokenizer_config.json",
                   R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|im_end|>"})");
  const auto tok = Tokenizer::from_hf_dir(dir.path());
  EXPECT_EQ(tok->vocab().pre, "llama-bpe");
  EXPECT_EQ(tok->bos(), 267);
  EXPECT_EQ(tok->eos(), 268);
  EXPECT_TRUE(tok->add_bos_default());
  // "hello" merges fully; " world" too; digits go in groups of at most three.
  EXPECT_EQ(tok->encode("hello world", true, false), (std::vector<int32_t>{267, 259, 264}));
  EXPECT_EQ(tok->encode("1234", false, false), (std::vector<int32_t>{266, '4'}));
  EXPECT_EQ(tok->encode("<|im_end|>", false, true), (std::vector<int32_t>{268}));
  test::ScratchDir gguf_dir;
  const auto tok2 = gguf_round_trip(*tok, gguf_dir);
  EXPECT_EQ(tok2->vocab().pre, "llama-bpe");
  for (const char* s : {"hello world", "1234567", "it's IT'S", "x<|im_end|>y"}) {
    EXPECT_EQ(tok->encode(s, true, true), tok2->encode(s, true, true)) << s;
    EXPECT_EQ(tok->decode(tok->encode(s, false, true)), s);
  }
}

TEST(TokenizerHf, Qwen2StyleTokenizerJson) {
  test::ScratchDir dir;
  test::write_file(dir / "tokenizer.json",
                   tiny_bpe_json(split_then_byte_level(kQwen2Regex), nullptr).dump());
  test::write_file(dir / "tokenizer_config.json",
                   R"({"bos_token": null, "eos_token": "<|im_end|>", "add_bos_token": false})");
  const auto tok = Tokenizer::from_hf_dir(dir.path());
  EXPECT_EQ(tok->vocab().pre, "qwen2");
  EXPECT_EQ(tok->bos(), -1);
  EXPECT_FALSE(tok->add_bos_default());
  // Qwen2 splits digits one by one, so "123" never merges.
  EXPECT_EQ(tok->encode("123", false, false), (std::vector<int32_t>{'1', '2', '3'}));
  EXPECT_THROW(tok->encode("x", true, false), Error);  // no BOS token to add
}

TEST(TokenizerHf, UnsupportedInputsAreClearErrors) {
  const auto expect_error = [](const std::filesystem::path& dir, const std::string& needle) {
    try {
      Tokenizer::from_hf_dir(dir);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  test::ScratchDir empty;
  expect_error(empty.path(), "no tokenizer.model or tokenizer.json");
  expect_error(empty / "missing", "not a directory");

  test::ScratchDir odd_regex;
  test::write_file(odd_regex / "tokenizer.json",
                   tiny_bpe_json(split_then_byte_level("\\p{L}+|\\s+"), nullptr).dump());
  expect_error(odd_regex.path(), "\\\\p{L}+|\\\\s+");

  test::ScratchDir spm_json;  // Llama-2 style tokenizer.json (byte fallback, no ByteLevel)
  test::write_file(spm_json / "tokenizer.json",
                   R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []},
                       "pre_tokenizer": null, "decoder": {"type": "Sequence", "decoders": []}})");
  expect_error(spm_json.path(), "only byte-level BPE tokenizer.json");

  test::ScratchDir unigram;
  // One piece, and no trainer_spec: the model type defaults to unigram.
  std::string piece, proto;
  put_bytes(piece, 1, "<unk>");
  put_float(piece, 2, 0.0f);
  put_int(piece, 3, 2);
  put_bytes(proto, 1, piece);
  test::write_file(unigram / "tokenizer.model", proto);
  expect_error(unigram.path(), "SentencePiece model type unigram is not supported");

  test::ScratchDir bad_json;
  test::write_file(bad_json / "tokenizer.json", "{ not json");
  expect_error(bad_json.path(), "invalid JSON");

  test::ScratchDir bad_model;
  test::write_file(bad_model / "tokenizer.model", "\xff\xff\xff garbage");
  expect_error(bad_model.path(), "not a valid SentencePiece model");
}

}  // namespace
}  // namespace ep
