// `edgeprompt run --prompt` renders with the model's own Jinja chat template (tokenizer_config.json
// in a directory, tokenizer.chat_template in the GGUF converted from it); --chat-template NAME
// picks a built-in, --chat-template-file F a Jinja file; a template that fails is a clear error.
#include "test_util.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ep {
namespace {

namespace fs = std::filesystem;

// ChatML, but with the role in capitals: renders unlike the built-in chatml.
constexpr const char* kShouting =
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role | upper }}\n{{ m.content }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>ASSISTANT\n{% endif %}";

class RunChatTemplate : public ::testing::Test {
 protected:
  void SetUp() override {
    test::make_chat_model_dir(hf_);
    auto config = nlohmann::json::parse(test::read_file(hf_ / "tokenizer_config.json"));
    config["chat_template"] = kShouting;
    test::write_file(hf_ / "tokenizer_config.json", config.dump());
    const auto c = test::run_cli({"convert", hf_.string(), "--dtype", "f32", "--out", gguf_});
    ASSERT_EQ(c.exit_code, 0) << c.err;
  }

  // The number of tokens of `text` with control tokens parsed and no BOS added.
  size_t n_tokens(const std::string& text) {
    const auto r = test::run_cli(
        {"tokenize", "--model", gguf_, "--text", text, "--no-bos", "--parse-special"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out).size();
  }

  test::CommandResult run(std::vector<std::string> extra, const std::string& model = "") {
    std::vector<std::string> args = {"run",         "--model",   model.empty() ? gguf_ : model,
                                     "--system",    "Be brief.", "--prompt",
                                     "Hello world", "--temp",    "0",
                                     "-n",          "2",         "--precision",
                                     "exact"};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_cli(args);
  }

  test::ScratchDir dir_;
  fs::path hf_ = dir_ / "hf";
  std::string gguf_ = (dir_ / "model.gguf").string();
};

TEST_F(RunChatTemplate, TheModelsOwnTemplateRendersThePrompt) {
  const size_t own = n_tokens(
      "<s><|im_start|>SYSTEM\nBe brief.<|im_end|>\n<|im_start|>USER\nHello world<|im_end|>\n"
      "<|im_start|>ASSISTANT\n");
  const size_t chatml = n_tokens(
      "<s><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello world<|im_end|>\n"
      "<|im_start|>assistant\n");
  ASSERT_NE(own, chatml);
  for (const std::string& model : {hf_.string(), gguf_}) {
    SCOPED_TRACE(model);
    const auto r = run({}, model);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find(fmt::format("prompt: {} tokens", own)), std::string::npos) << r.err;
    const auto named = run({"--chat-template", "model"}, model);
    EXPECT_NE(named.err.find(fmt::format("prompt: {} tokens", own)), std::string::npos)
        << named.err;
    const auto builtin = run({"--chat-template", "chatml"}, model);
    EXPECT_NE(builtin.err.find(fmt::format("prompt: {} tokens", chatml)), std::string::npos)
        << builtin.err;
  }
}

TEST_F(RunChatTemplate, AFileTemplateRendersThePromptAndFailuresAreClear) {
  test::write_file(dir_ / "plain.jinja",
                   "{% for m in messages %}{{ m.content }}|{% endfor %}{{ eos_token }}");
  const auto r = run({"--chat-template-file", (dir_ / "plain.jinja").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(fmt::format("prompt: {} tokens", n_tokens("Be brief.|Hello world|</s>"))),
            std::string::npos)
      << r.err;

  test::write_file(dir_ / "raises.jinja",
                   "{% if messages[0].role == 'system' %}\n"
                   "{{ raise_exception('System role not supported') }}{% endif %}");
  const auto raised = run({"--chat-template-file", (dir_ / "raises.jinja").string()});
  EXPECT_NE(raised.exit_code, 0);
  EXPECT_NE(raised.err.find("template: line 2: raise_exception: System role not supported"),
            std::string::npos)
      << raised.err;

  test::write_file(dir_ / "broken.jinja", "{% for m in messages %}");
  const auto broken = run({"--chat-template-file", (dir_ / "broken.jinja").string()});
  EXPECT_NE(broken.exit_code, 0);
  EXPECT_NE(broken.err.find("broken.jinja': template: line 1"), std::string::npos) << broken.err;

  const auto both =
      run({"--chat-template", "chatml", "--chat-template-file", (dir_ / "plain.jinja").string()});
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.err.find("not both"), std::string::npos) << both.err;
}

TEST_F(RunChatTemplate, ATemplateThatDoesNotParseFailsOnlyChats) {
  auto config = nlohmann::json::parse(test::read_file(hf_ / "tokenizer_config.json"));
  config["chat_template"] = "{% for m in messages %}{{ m.content }";
  test::write_file(hf_ / "tokenizer_config.json", config.dump());
  const auto r = run({}, hf_.string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("chat template 'model': template: line 1"), std::string::npos) << r.err;
  // Token ids need no template; a built-in still works.
  EXPECT_EQ(test::run_cli({"run", "--model", hf_.string(), "--tokens", "1,5", "-n", "1"}).exit_code,
            0);
  EXPECT_EQ(run({"--chat-template", "chatml"}, hf_.string()).exit_code, 0);
  // One that is recognisable falls back to its built-in format.
  config["chat_template"] = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }";
  test::write_file(hf_ / "tokenizer_config.json", config.dump());
  const auto fallback = run({}, hf_.string());
  ASSERT_EQ(fallback.exit_code, 0) << fallback.err;
  const auto chatml = run({"--chat-template", "chatml"}, hf_.string());
  const auto tokens_line = [](const std::string& err) {  // "prompt: N tokens"
    const size_t at = err.find("prompt: ");
    return at == std::string::npos ? err : err.substr(at, err.find(" tokens", at) - at);
  };
  EXPECT_EQ(tokens_line(fallback.err), tokens_line(chatml.err));
}

}  // namespace
}  // namespace ep
