// tokenize / detokenize on the files people download: llama.cpp's vocabulary-only GGUF files
// (tokenizer metadata, no weights) reproduce their reference ids through the binary and decode back
// to the text; a tokenizer-only Hugging Face directory works; a file without a vocabulary is one
// clear error naming what is missing.
#include "model/gguf.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ep {
namespace {

namespace fs = std::filesystem;
const fs::path kVocabs = test::fixtures_dir() / "tokenizer";

struct Case {
  std::string text;
  std::string ids;  // comma-separated, as tokenize prints them between [ and ]
};

// <file>.inp: strings each followed by "\n__ggml_vocab_test__\n"; <file>.out: a line of
// space-separated ids per string (no BOS).
std::vector<Case> load_cases(const std::string& vocab) {
  const std::string inp = test::read_file(kVocabs / (vocab + ".inp"));
  std::istringstream out(test::read_file(kVocabs / (vocab + ".out")));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0, end; (end = inp.find(sep, pos)) != std::string::npos;
       pos = end + sep.size()) {
    std::string line;
    std::getline(out, line);
    std::istringstream words(line);
    std::string ids;
    for (std::string id; words >> id;) ids += (ids.empty() ? "" : ",") + id;
    cases.push_back({inp.substr(pos, end - pos), ids});
  }
  return cases;
}

std::string stdout_line(const test::CommandResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(!r.out.empty() && r.out.back() == '\n') << r.out;
  return r.out.empty() ? r.out : r.out.substr(0, r.out.size() - 1);
}

class VocabCli : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabCli, TokenizeMatchesReferenceAndDetokenizeRoundTrips) {
  const std::string vocab = (kVocabs / GetParam()).string();
  const auto cases = load_cases(GetParam());
  ASSERT_EQ(cases.size(), 46u);
  test::ScratchDir dir;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const fs::path file = dir / ("case" + std::to_string(i) + ".txt");
    std::ofstream(file, std::ios::binary) << c.text;
    const auto t =
        test::run_cli({"tokenize", "--model", vocab, "--file", file.string(), "--no-bos"});
    EXPECT_EQ(stdout_line(t), "[" + c.ids + "]") << "text: '" << c.text << "'";
    // Every third string and the long last one go back through detokenize (each run loads the
    // vocabulary; the library tests decode every string).
    if (c.ids.empty() || (i % 3 != 0 && i + 1 != cases.size())) continue;
    const auto d = test::run_cli({"detokenize", "--model", vocab, "--tokens", c.ids});
    EXPECT_EQ(stdout_line(d), c.text);
  }
}

// The model's own BOS choice applies unless --no-bos: DeepSeek's vocabulary asks for it
// (tokenizer.ggml.add_bos_token), StarCoder's and GPT-2's do not, Llama's SentencePiece does.
TEST_P(VocabCli, BosFollowsTheVocabulary) {
  const std::string vocab = (kVocabs / GetParam()).string();
  const auto ids = nlohmann::json::parse(
      stdout_line(test::run_cli({"tokenize", "--model", vocab, "--text", "Hello world"})));
  const auto no_bos = nlohmann::json::parse(stdout_line(
      test::run_cli({"tokenize", "--model", vocab, "--text", "Hello world", "--no-bos"})));
  int bos = -1;
  if (GetParam().find("deepseek") != std::string::npos) bos = 100000;
  if (GetParam().find("llama-spm") != std::string::npos) bos = 1;
  if (bos < 0) {
    EXPECT_EQ(ids, no_bos);
  } else {
    ASSERT_EQ(ids.size(), no_bos.size() + 1);
    EXPECT_EQ(ids.front(), bos);
  }
}

INSTANTIATE_TEST_SUITE_P(Cli, VocabCli,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf",
                                           "ggml-vocab-deepseek-llm.gguf",
                                           "ggml-vocab-starcoder.gguf"),
                         [](const auto& param_info) {
                           std::string name;
                           for (const char c : param_info.param.substr(11)) {
                             if (c == '.') break;
                             if (std::isalnum(uint8_t(c))) name += c;
                           }
                           return name;
                         });

TEST(CliTokenize, TokenizerOnlyDirectory) {
  const auto r =
      test::run_cli({"tokenize", "--model", (kVocabs / "spm_tiny").string(), "--text", "hello"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out).is_array());
}

TEST(CliTokenize, FileWithoutVocabularyIsOneClearError) {
  test::ScratchDir dir;
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("llama"));
  writer.write(dir / "empty.gguf");
  for (const char* command : {"tokenize", "detokenize"}) {
    std::vector<std::string> args = {command, "--model", (dir / "empty.gguf").string()};
    if (std::strcmp(command, "tokenize") == 0) {
      args.insert(args.end(), {"--text", "hi"});
    } else {
      args.insert(args.end(), {"--tokens", "1"});
    }
    const auto r = test::run_cli(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("neither weights nor a vocabulary"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("tokenizer.ggml.model"), std::string::npos) << r.err;
  }
  // A vocabulary whose pre-tokenizer we do not know names it and the known ones.
  GgufWriter unknown;
  unknown.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  unknown.set("tokenizer.ggml.pre", GgufValue::string("mystery-pre"));
  unknown.set("tokenizer.ggml.tokens", GgufValue::string_array({"a", "b", "ab"}));
  unknown.set("tokenizer.ggml.merges", GgufValue::string_array({"a b"}));
  unknown.write(dir / "unknown.gguf");
  const auto r =
      test::run_cli({"tokenize", "--model", (dir / "unknown.gguf").string(), "--text", "ab"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("'mystery-pre'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("deepseek-llm"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ep
