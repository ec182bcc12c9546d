// The text CLI: run (greedy against the Hugging Face reference, sampling by seed, stop strings,
// chat prompts), tokenize/detokenize, convert carrying the tokenizer (HF and GGUF agree), and
// bad input.
#include "core/npy.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace ep {
namespace {

namespace fs = std::filesystem;
const fs::path kModels = test::fixtures_dir() / "models";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string expect_error(const std::vector<std::string>& args) {
  const auto r = test::run_cli(args);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_LT(r.exit_code, 128) << "killed by a signal: " << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  return r.err;
}

std::vector<std::string> models_with_reference() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kModels)) {
    if (fs::exists(e.path() / "reference" / "greedy_40.txt")) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RunCli, GreedyMatchesTheHuggingFaceContinuation) {
  const auto models = models_with_reference();
  ASSERT_FALSE(models.empty());
  for (const auto& model : models) {
    SCOPED_TRACE(model);
    const std::string prompt = trim(test::read_file(fs::path(model) / "reference/prompt_40.txt"));
    const std::string want = trim(test::read_file(fs::path(model) / "reference/greedy_40.txt"));
    const auto r = test::run_cli({"run", "--precision", "exact", "--model", model, "--tokens",
                                  prompt, "--chat-template", "none", "--temp", "0", "-n", "20"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(trim(r.out), want);
    EXPECT_NE(r.err.find("prompt: 40 tokens"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("generation: 20 tokens"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("time to first token"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\r'), std::string::npos) << "progress drawn into a pipe";
  }
}

// --precision fast takes the 8-bit/bf16 kernels where the CPU has them; the generation still
// runs to the requested length. Other values are refused.
TEST(RunCli, PrecisionOption) {
  const std::string model = (kModels / "qwen2-bias").string();
  const auto r = test::run_cli({"run", "--model", model, "--tokens", "1,5,9,200", "--temp", "0",
                                "-n", "6", "--precision", "fast"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), ','), 5) << r.out;
  const auto bad =
      test::run_cli({"run", "--model", model, "--tokens", "1,5", "--precision", "fastest"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--precision"), std::string::npos) << bad.err;
}

TEST(RunCli, GreedyIsTheArgmaxChainOfLogits) {
  test::ScratchDir dir;
  const std::string model = (kModels / "qwen2-bias").string();
  const auto r = test::run_cli({"run", "--precision", "exact", "--model", model, "--tokens",
                                "1,5,9,200", "--temp", "0", "-n", "6"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string gen = trim(r.out);
  const auto l = test::run_cli({"logits", "--model", model, "--tokens", "1,5,9,200," + gen, "--out",
                                (dir / "l.npy").string()});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  const NpyArray a = read_npy(dir / "l.npy");
  const int64_t n_vocab = a.shape[1];
  std::string chain;
  for (int64_t row = 3; row + 1 < a.shape[0]; ++row) {  // the last row predicts a 7th
    const auto begin = a.data.begin() + row * n_vocab;
    chain += (chain.empty() ? "" : ",") +
             std::to_string(std::max_element(begin, begin + n_vocab) - begin);
  }
  EXPECT_EQ(chain, gen);
  EXPECT_EQ(std::count(gen.begin(), gen.end(), ','), 5);
}

TEST(RunCli, SamplingIsReproducibleBySeed) {
  const std::string model = (kModels / "llama-gqa").string();
  const auto run = [&](const std::string& seed) {
    const auto r =
        test::run_cli({"run", "--model", model, "--tokens", "1,2,3", "--temp", "5", "--top-k", "0",
                       "--top-p", "1", "--min-p", "0", "-n", "24", "--seed", seed});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  EXPECT_EQ(run("11"), run("11"));
  EXPECT_NE(run("11"), run("12"));
}

// A fixture model with the tiny SentencePiece tokenizer and a ChatML template (vocabulary 402
// within the model's 1000 embedding rows), and the GGUF our converter writes from it.
class TextModel : public ::testing::Test {
 protected:
  void SetUp() override {
    test::make_chat_model_dir(hf_);
    const auto c = test::run_cli({"convert", hf_.string(), "--dtype", "f32", "--out", gguf_});
    ASSERT_EQ(c.exit_code, 0) << c.err;
  }
  test::ScratchDir dir_;
  fs::path hf_ = dir_ / "hf";
  std::string gguf_ = (dir_ / "model.gguf").string();
};

TEST_F(TextModel, ConvertedGgufTokenizesLikeTheDirectory) {
  for (const char* text : {"Hello world", "The café serves crème brûlée.", "Emoji 🦙 and 我想",
                           "a <think> b <|im_end|> c", " leading\n\nnewlines ", "x"}) {
    for (const bool parse : {false, true}) {
      std::vector<std::string> args = {"tokenize", "--model", "", "--text", text};
      if (parse) args.push_back("--parse-special");
      args[2] = hf_.string();
      const auto a = test::run_cli(args);
      args[2] = gguf_;
      const auto b = test::run_cli(args);
      ASSERT_EQ(a.exit_code, 0) << a.err;
      ASSERT_EQ(b.exit_code, 0) << b.err;
      EXPECT_EQ(a.out, b.out) << text;
      const auto ids = nlohmann::json::parse(a.out);
      ASSERT_TRUE(ids.is_array());
      EXPECT_EQ(ids.front(), 1);  // BOS
    }
  }
  const auto nb = test::run_cli({"tokenize", "--model", gguf_, "--text", "Hi", "--no-bos"});
  EXPECT_NE(nlohmann::json::parse(nb.out).front(), 1);
  const auto special = test::run_cli(
      {"tokenize", "--model", gguf_, "--text", "<|im_end|>", "--no-bos", "--parse-special"});
  EXPECT_EQ(trim(special.out), "[400]");
  const auto info = test::run_cli({"info", "--model", gguf_});
  EXPECT_EQ(info.exit_code, 0);
}

TEST_F(TextModel, DetokenizeInvertsTokenize) {
  const std::string text = "The café serves crème brûlée.";
  for (const std::string& model : {hf_.string(), gguf_}) {
    const auto t = test::run_cli({"tokenize", "--model", model, "--text", text, "--no-bos"});
    std::string ids;
    for (const auto& id : nlohmann::json::parse(t.out)) {
      ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
    }
    const auto d = test::run_cli({"detokenize", "--model", model, "--tokens", ids});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(d.out, text + "\n");
  }
}

TEST_F(TextModel, RunStreamsTextTheSameFromDirectoryAndGguf) {
  std::string first;
  for (const std::string& model : {hf_.string(), gguf_}) {
    const auto r =
        test::run_cli({"run", "--precision", "exact", "--model", model, "--system", "Be brief.",
                       "--prompt", "Hello world", "--temp", "0", "-n", "12"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("[PAD"), std::string::npos) << "sampled a padding token";
    if (first.empty()) first = r.out;
    EXPECT_EQ(r.out, first);
    EXPECT_NE(r.err.find("generation:"), std::string::npos);
  }
  // The ChatML template was recognised: naming it changes nothing, "none" changes the prompt.
  const auto named = test::run_cli({"run", "--precision", "exact", "--model", gguf_, "--system",
                                    "Be brief.", "--prompt", "Hello world", "--temp", "0", "-n",
                                    "12", "--chat-template", "chatml"});
  EXPECT_EQ(named.out, first);
  const auto none =
      test::run_cli({"run", "--precision", "exact", "--model", gguf_, "--prompt", "Hello world",
                     "--temp", "0", "-n", "4", "--chat-template", "none"});
  const auto ids = test::run_cli({"tokenize", "--model", gguf_, "--text", "Hello world"});
  const size_t n = nlohmann::json::parse(ids.out).size();
  EXPECT_NE(none.err.find(fmt::format("prompt: {} tokens", n)), std::string::npos) << none.err;
}

TEST_F(TextModel, StopStringEndsTheOutputBeforeIt) {
  const std::vector<std::string> base = {
      "run", "--model", gguf_, "--prompt", "Hello world", "--temp", "1", "--seed", "5", "-n", "40"};
  const auto full = test::run_cli(base);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const std::string text = trim(full.out);
  ASSERT_GE(text.size(), 6u) << text;
  // Stop at a piece of the middle of the text (ASCII only, so it is valid UTF-8 on its own).
  std::string stop;
  for (size_t i = 2; i + 2 <= text.size() && stop.empty(); ++i) {
    if (uint8_t(text[i]) < 0x80 && uint8_t(text[i + 1]) < 0x80 && text[i] != '\n') {
      stop = text.substr(i, 2);
    }
  }
  ASSERT_FALSE(stop.empty()) << text;
  auto args = base;
  args.insert(args.end(), {"--stop", stop, "--stop", "\x01never"});
  const auto cut = test::run_cli(args);
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  EXPECT_EQ(cut.out, text.substr(0, text.find(stop)) + "\n");
}

TEST_F(TextModel, BadTextInputGetsOneClearError) {
  expect_error({"run", "--model", gguf_, "--prompt", "bad \xFF byte"});
  expect_error({"run", "--model", gguf_, "--prompt", ""});
  expect_error({"run", "--model", gguf_, "--prompt", "hi", "--chat-template", "vicuna"});
  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "many words here ";
  const auto e = expect_error({"run", "--model", gguf_, "--prompt", long_prompt});
  EXPECT_NE(e.find("context"), std::string::npos) << e;
  expect_error({"run", "--model", gguf_, "--prompt", "hi", "--tokens", "1,2"});
  expect_error({"run", "--model", gguf_, "--prompt", "hi", "--stop", ""});
  expect_error({"tokenize", "--model", gguf_, "--text", "\xC3("});
  expect_error({"detokenize", "--model", gguf_, "--tokens", "1,99999"});
}

TEST(RunCli, BadInputGetsOneClearError) {
  const std::string model = (kModels / "llama-gqa").string();
  const auto e = expect_error({"run", "--model", model, "--tokens", "1,2,1000"});
  EXPECT_NE(e.find("1000"), std::string::npos) << e;
  expect_error({"run", "--model", model, "--tokens", "1,2", "--chat-template", "nope"});
  expect_error({"run", "--model", model, "--tokens", "1,x"});
  expect_error({"run", "--model", model, "--prompt", "hi"});  // no tokenizer
  expect_error({"run", "--model", model, "--tokens", "1,2", "--top-p", "0"});
  std::string too_long = "1";
  for (int i = 0; i < 600; ++i) too_long += ",1";
  expect_error({"run", "--model", model, "--tokens", too_long});
  expect_error({"tokenize", "--model", model, "--text", "hi"});
}

}  // namespace
}  // namespace ep
