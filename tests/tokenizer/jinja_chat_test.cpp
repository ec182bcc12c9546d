// The chat path with Jinja templates (tokenizer/jinja_chat.h, ChatTemplate): each of the six
// published templates in tests/fixtures/templates, given chats as the services and `run` give
// them, renders what Python's jinja2 renders (tests/jinja/render_reference.py, set up as Hugging
// Face does); the split into the cloud prompt and the private part holds wherever the template
// allows it and is refused, with a clear error, where it does not; the model's own template is
// what a model's chats use.
#include "tokenizer/jinja_chat.h"
#include "core/error.h"
#include "model/gguf.h"
#include "test_util.h"
#include "tokenizer/prompt_parts.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>

namespace ep {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using Chat = std::vector<ChatMessage>;

constexpr std::int64_t kNow = 1721952000;  // what strftime_now formats: 2024-07-26 UTC

const char* kTemplates[] = {
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    "meta-llama-Llama-3.1-8B-Instruct.jinja",
    "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "mistralai-Mistral-Nemo-Instruct-2407.jinja",
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
};

std::shared_ptr<const JinjaChat> load(const std::string& name, const std::string& bos = "<s>",
                                      const std::string& eos = "</s>") {
  jinja::Options options = jinja::Options::hugging_face();
  options.now = kNow;
  return std::make_shared<const JinjaChat>(
      name, test::read_file(test::fixtures_dir() / "templates" / name), bos, eos, options);
}

json tools() {
  return json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Get the weather.", "parameters": {"type": "object", "properties": {
      "location": {"type": "string", "description": "A city"}}, "required": ["location"]}}}])");
}

struct Case {
  std::string what, system;
  Chat messages;
  bool with_tools = false;
};

std::vector<Case> cases() {
  const Chat hello = {{"user", "Hello!"}};
  const Chat turns = {{"user", "Hi"},
                      {"assistant", "Hi. What do you need?"},
                      {"user", "  The weather in Paris, please.  "}};
  const Chat unicode = {{"user", "Grüß dich — 你好 😀 \"quoted\" \\ <b>"}};
  return {{"user only", "", hello},
          {"system + user", "You are terse.\n", hello},
          {"multi-turn", "Be brief.", turns},
          {"multi-turn, no system", "", turns},
          {"non-ASCII", "Réponds en français.", unicode},
          {"tools", "You are terse.", {{"user", "Weather in Paris?"}}, true},
          {"tools, no system", "", {{"user", "Weather in Paris?"}}, true}};
}

// What jinja2 renders for each case (nullopt where it raises).
std::vector<std::optional<std::string>> reference(const std::string& name,
                                                  const test::ScratchDir& dir) {
  const fs::path path = test::fixtures_dir() / "templates" / name;
  std::vector<std::string> args = {
      (test::source_dir() / "tests/jinja/render_reference.py").string(), path.string(),
      std::to_string(kNow)};
  const auto all = cases();
  for (size_t i = 0; i < all.size(); ++i) {
    json messages = json::array();
    if (!all[i].system.empty())
      messages.push_back({{"role", "system"}, {"content", all[i].system}});
    for (const auto& m : all[i].messages)
      messages.push_back({{"role", m.role}, {"content", m.content}});
    json c;
    c["messages"] = messages;
    c["tools"] = all[i].with_tools ? tools() : json();
    c["add_generation_prompt"] = true;
    c["bos_token"] = "<s>";
    c["eos_token"] = "</s>";
    args.push_back((dir / (name + std::to_string(i) + ".json")).string());
    test::write_file(args.back(), c.dump());
  }
  const auto r = test::run_program(test::python3(), args);
  EXPECT_EQ(r.exit_code, 0) << "python3 with jinja2 is needed (Debian: python3-jinja2): " << r.err;
  std::vector<std::optional<std::string>> out;
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string file = args[3 + i];
    if (fs::exists(file + ".out")) {
      out.push_back(test::read_file(file + ".out"));
    } else {
      out.push_back(std::nullopt);
    }
  }
  return out;
}

TEST(JinjaChat, EveryFixtureTemplateRendersChatsAsPythonJinja2) {
  test::ScratchDir dir;
  int same = 0, raised = 0;
  for (const char* name : kTemplates) {
    const ChatTemplate tmpl(load(name));
    EXPECT_TRUE(tmpl.is_jinja());
    const auto ref = reference(name, dir);
    const auto all = cases();
    ASSERT_EQ(ref.size(), all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      SCOPED_TRACE(std::string(name) + ", " + all[i].what);
      std::string ours, error;
      try {
        ours =
            tmpl.render_whole(all[i].system, all[i].messages, all[i].with_tools ? tools() : json());
      } catch (const Error& e) {
        error = e.what();
      }
      if (!ref[i]) {
        EXPECT_NE(error, "") << "jinja2 raised but we rendered:\n" << ours;
        EXPECT_NE(error.find(std::string("chat template '") + name + "'"), std::string::npos)
            << error;
        ++raised;
        continue;
      }
      EXPECT_EQ(error, "");
      EXPECT_EQ(ours, *ref[i]);
      ++same;
    }
  }
  EXPECT_GE(same, 30);
  std::printf("[ jinja    ] %d chats rendered as jinja2 does, %d raised by both\n", same, raised);
}

// Distinctive system texts: their words are in no conversation below.
const std::vector<std::string> kSystems = {"Zanzibar quokka archivist, protocol seven.",
                                           "Grimsby lighthouse rota only.\n"};
const std::vector<Chat> kChats = {
    {{"user", "Hello there"}},
    {{"user", "line\nbreaks\n"}},
    {{"user", "What time is it?"}, {"assistant", "Noon."}, {"user", "And tomorrow?"}},
};

// The tiny SentencePiece fixture with the templates' control tokens added as special tokens, as
// the real models have them.
std::unique_ptr<Tokenizer> chat_tokenizer(const test::ScratchDir& dir) {
  const auto src = test::fixtures_dir() / "tokenizer" / "spm_tiny";
  std::filesystem::copy_file(src / "tokenizer.model", dir / "tokenizer.model");
  auto config = nlohmann::json::parse(test::read_file(src / "tokenizer_config.json"));
  int id = 402;  // after the fixture's 402 pieces
  for (const char* t : {"<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
                        "<|end_header_id|>", "<|eot_id|>", "<｜User｜>", "<｜Assistant｜>",
                        "<｜end▁of▁sentence｜>", "[INST]", "[/INST]"}) {
    config["added_tokens_decoder"][std::to_string(id++)] = {{"content", t}, {"special", true}};
  }
  test::write_file(dir / "tokenizer_config.json", config.dump());
  return Tokenizer::from_hf_dir(dir.path());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JinjaChat, CloudPromptAndPrivatePartAreTheWholeChatOrTheSplitIsRefused) {
  test::ScratchDir dir;
  const auto tok = chat_tokenizer(dir);
  const std::string bos = tok->token_to_piece(tok->bos()), eos = tok->token_to_piece(tok->eos());
  EXPECT_EQ(bos, "<s>");
  // Mistral puts the system message into the last user turn; Hermes' tool-use template needs tools.
  const std::map<std::string, std::string> refused = {
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "depends on the system text"},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "template: line"}};
  for (const char* name : kTemplates) {
    SCOPED_TRACE(name);
    const ChatTemplate tmpl(load(name, bos, eos));
    if (refused.contains(name)) {
      for (const auto& system : kSystems) {
        const std::string e = error_of([&] { cloud_prompt_tokens(*tok, tmpl, system); });
        EXPECT_NE(e.find(refused.at(name)), std::string::npos) << e;
        EXPECT_NE(e.find(name), std::string::npos) << e;
      }
      EXPECT_NE(error_of([&] { private_prompt_tokens(*tok, tmpl, kChats[0]); }), "");
      continue;
    }
    for (const Chat& chat : kChats) {
      SCOPED_TRACE(chat.back().content);
      const std::vector<int32_t> priv = private_prompt_tokens(*tok, tmpl, chat);
      ASSERT_FALSE(priv.empty());
      for (const auto& system : kSystems) {
        // The text: system part + the rest = the whole chat.
        const RenderedChat parts = tmpl.render(system, chat);
        EXPECT_EQ(parts.prefix + parts.suffix, tmpl.render_whole(system, chat));
        const std::string words = system.substr(0, system.find_last_not_of('\n') + 1);  // trim
        EXPECT_NE(parts.prefix.find(words), std::string::npos);
        EXPECT_EQ(parts.suffix.find(words.substr(0, 8)), std::string::npos);
        // The tokens: the cloud's, then the device's, are the whole chat's.
        std::vector<int32_t> split = cloud_prompt_tokens(*tok, tmpl, system);
        const std::vector<int32_t> whole = local_chat_tokens(*tok, tmpl, system, chat);
        ASSERT_LT(split.size(), whole.size());
        EXPECT_TRUE(std::equal(split.begin(), split.end(), whole.begin()));
        split.insert(split.end(), priv.begin(), priv.end());
        EXPECT_EQ(split, whole);
      }
    }
  }
}

TEST(JinjaChat, ASystemPartThatDoesNotEndOnATokenBoundaryIsRefused) {
  // GPT-2's vocabulary has no <|eot_id|> or <|start_header_id|>: as text, "|><|" across the
  // boundary is one pre-token, so the cloud's tokens would not begin the chat's.
  const auto tok = Tokenizer::from_gguf(
      *GgufFile::open(test::fixtures_dir() / "tokenizer" / "ggml-vocab-gpt-2.gguf"));
  const ChatTemplate tmpl(load("meta-llama-Llama-3.1-8B-Instruct.jinja"));
  const std::string e = error_of([&] { cloud_prompt_tokens(*tok, tmpl, "Be brief."); });
  EXPECT_NE(e.find("does not end where a token ends"), std::string::npos) << e;
}

TEST(JinjaChat, ASystemPartThatIsNotAPrefixIsRefused) {
  // The system message after the conversation: its render alone is no prefix of the chat's.
  const ChatTemplate last(std::make_shared<const JinjaChat>(
      "last",
      "{% for m in messages if m.role != 'system' %}[{{ m.content }}]{% endfor %}"
      "{% for m in messages if m.role == 'system' %}({{ m.content }}){% endfor %}",
      "<s>", "</s>"));
  const Chat hello = {{"user", "hi"}};
  EXPECT_EQ(last.render_whole("sys", hello), "[hi](sys)");
  const std::string e = error_of([&] { last.render("sys", hello); });
  EXPECT_NE(e.find("chat template 'last' cannot split"), std::string::npos) << e;
  EXPECT_NE(e.find("is not the start of"), std::string::npos) << e;
  // Without a system message there is nothing to split.
  EXPECT_EQ(last.render("", hello).suffix, "[hi]");
  // A template that fails is an error naming it and the line, never a crash.
  const ChatTemplate raises(std::make_shared<const JinjaChat>(
      "strict",
      "{% if messages | length > 1 %}\n{{ raise_exception('one message only') }}{% endif %}", "",
      ""));
  const std::string r = error_of([&] { raises.render_whole("sys", hello); });
  EXPECT_NE(r.find("chat template 'strict': template: line 2: raise_exception: one message only"),
            std::string::npos)
      << r;
  const std::string p = error_of([] { JinjaChat("bad", "{% for x in %}", "", ""); });
  EXPECT_NE(p.find("chat template 'bad': template: line 1"), std::string::npos) << p;
  const ChatTemplate broken = ChatTemplate::broken("model", "chat template 'model': no");
  EXPECT_EQ(error_of([&] { broken.render_whole("", hello); }), "chat template 'model': no");
}

TEST(JinjaChat, NamesResolveToBuiltInsOrTheModelsOwnTemplate) {
  const ChatTemplate own(load("Qwen-Qwen2.5-7B-Instruct.jinja"));
  EXPECT_EQ(own.name(), "Qwen-Qwen2.5-7B-Instruct.jinja");
  EXPECT_TRUE(chat_template_by_name("model", own).is_jinja());
  EXPECT_EQ(chat_template_by_name("chatml", own).format(), ChatFormat::chatml);
  EXPECT_FALSE(chat_template_by_name("chatml", own).is_jinja());
  const std::string none = error_of([] { chat_template_by_name("model", ChatTemplate()); });
  EXPECT_NE(none.find("carries no chat template"), std::string::npos) << none;
  const std::string unknown = error_of([&] { chat_template_by_name("vicuna", own); });
  EXPECT_NE(unknown.find("'vicuna'"), std::string::npos) << unknown;
  // Tools need a Jinja template.
  const Chat hello = {{"user", "hi"}};
  EXPECT_NE(error_of([&] {
              ChatTemplate(ChatFormat::chatml).render_whole("", hello, tools());
            }).find("no place for tools"),
            std::string::npos);
}

}  // namespace
}  // namespace ep
