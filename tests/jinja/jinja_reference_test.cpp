// The six published chat templates in tests/fixtures/templates rendered by this interpreter and
// by Python's jinja2 (set up as Hugging Face does, tests/jinja/render_reference.py), compared
// byte for byte over several chats; where jinja2 raises (by the template's design), so must we.
#include "core/error.h"
#include "jinja/template.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <sstream>

namespace ep {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr std::int64_t kNow = 1721952000;  // what strftime_now formats: 2024-07-26 UTC

const char* kTemplates[] = {
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    "meta-llama-Llama-3.1-8B-Instruct.jinja",
    "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "mistralai-Mistral-Nemo-Instruct-2407.jinja",
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
};

json tools() {
  return json::parse(R"([
    {"type": "function", "function": {"name": "get_weather",
      "description": "Get the current weather in a place.",
      "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit "},
        "days": {"type": "integer", "description": "Days ahead"},
        "hours": {"type": "array", "items": {"type": "integer"}, "description": "Hours"}},
        "required": ["location"]},
      "return": {"type": "number", "description": "The temperature"}}},
    {"type": "function", "function": {"name": "search", "description": "Search the web.",
      "parameters": {"type": "object", "properties": {
        "query": {"type": "string", "description": "Words to find"}}, "required": ["query"]}}}
  ])");
}

// Each chat: messages, whether to add the generation prompt, tools or not.
std::vector<std::pair<std::string, json>> contexts() {
  auto ctx = [](json messages, bool gen, bool with_tools) {
    json c;
    c["messages"] = std::move(messages);
    c["tools"] = with_tools ? tools() : json();
    c["add_generation_prompt"] = gen;
    c["bos_token"] = "<s>";
    c["eos_token"] = "</s>";
    return c;
  };
  const json user = {{"role", "user"}, {"content", "Hello!"}};
  const json system = {{"role", "system"}, {"content", "You are terse.\n"}};
  const json assistant = {{"role", "assistant"}, {"content", "Hi. What do you need?"}};
  const json user2 = {{"role", "user"}, {"content", "  The weather in Paris, please.  "}};
  const json call = json::parse(R"({"role": "assistant", "content": null, "tool_calls": [
      {"id": "call12345", "type": "function",
       "function": {"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}}]})");
  const json call_str = json::parse(R"({"role": "assistant", "content": null, "tool_calls": [
      {"id": "call12345", "type": "function",
       "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\"}"}}]})");
  const json result = json::parse(
      R"({"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "22"})");
  const json answer = {{"role", "assistant"}, {"content", "It is 22 °C in Paris."}};
  const json unicode = {{"role", "user"}, {"content", "Grüß dich — 你好 😀 \"quoted\" \\ <b>"}};
  const json think = {{"role", "assistant"}, {"content", "<think>hmm</think>Sure: ça va."}};
  std::vector<std::pair<std::string, json>> out;
  out.emplace_back("single user", ctx({user}, false, false));
  out.emplace_back("single user, generation prompt", ctx({user}, true, false));
  out.emplace_back("system + user", ctx({system, user}, true, false));
  out.emplace_back("multi-turn", ctx({system, user, assistant, user2}, true, false));
  out.emplace_back("multi-turn, no system", ctx({user, assistant, user2, answer}, false, false));
  out.emplace_back("non-ASCII", ctx({unicode, think, unicode}, true, false));
  out.emplace_back("tools", ctx({system, user2}, true, true));
  out.emplace_back("tools, no system", ctx({user2}, true, true));
  out.emplace_back("tool call and response", ctx({user2, call, result, answer}, false, true));
  out.emplace_back("tool call with string arguments", ctx({user2, call_str, result}, true, true));
  out.emplace_back("roles not alternating", ctx({user, user2}, true, false));
  out.emplace_back("no messages", ctx(json::array(), true, false));
  return out;
}

TEST(JinjaReference, FixtureTemplatesMatchPythonJinja2) {
  const fs::path python = test::python3();
  const fs::path script = test::source_dir() / "tests/jinja/render_reference.py";
  const auto check = test::run_program(python, {"-c", "import jinja2"});
  ASSERT_EQ(check.exit_code, 0) << "python3 with jinja2 is needed (Debian: python3-jinja2): "
                                << check.err;
  test::ScratchDir dir;
  jinja::Options options = jinja::Options::hugging_face();
  options.now = kNow;
  int rendered = 0, raised = 0;
  for (const char* name : kTemplates) {
    const fs::path path = test::fixtures_dir() / "templates" / name;
    const std::string source = test::read_file(path);
    const auto tmpl = jinja::Template::parse(source, options);
    const auto all = contexts();
    std::vector<std::string> args = {script.string(), path.string(), std::to_string(kNow)};
    for (std::size_t i = 0; i < all.size(); ++i) {
      const fs::path file = dir / (std::string(name) + "." + std::to_string(i) + ".json");
      test::write_file(file, all[i].second.dump());
      args.push_back(file.string());
    }
    const auto ref = test::run_program(python, args);
    ASSERT_EQ(ref.exit_code, 0) << ref.err;
    int ok_here = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
      const auto& [what, context] = all[i];
      const std::string file = args[3 + i];
      std::string ours, error;
      try {
        ours = tmpl.render(context);
      } catch (const Error& e) {
        error = e.what();
      }
      SCOPED_TRACE(std::string(name) + ", " + what);
      if (fs::exists(file + ".err")) {
        EXPECT_NE(error, "") << "jinja2 raised (" << test::read_file(file + ".err")
                             << ") but we rendered:\n"
                             << ours;
        ++raised;
        continue;
      }
      EXPECT_EQ(error, "") << "jinja2 rendered but we raised";
      EXPECT_EQ(ours, test::read_file(file + ".out"));
      ++rendered;
      ++ok_here;
    }
    EXPECT_GE(ok_here, 4) << name << ": most chats should render";
  }
  std::printf("[ jinja    ] %d renders identical to jinja2, %d raised by both\n", rendered, raised);
}

TEST(JinjaReference, ParseAndRenderTwentyMessagesUnderAMillisecond) {
  const std::string source =
      test::read_file(test::fixtures_dir() / "templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
  json context;
  context["messages"] = json::array();
  context["messages"].push_back({{"role", "system"}, {"content", "You are a helpful assistant."}});
  for (int i = 0; i < 20; ++i) {
    context["messages"].push_back(
        {{"role", i % 2 ? "assistant" : "user"},
         {"content", "Message number " + std::to_string(i) + " with a few words of text in it."}});
  }
  context["tools"] = json();
  context["add_generation_prompt"] = true;
  context["bos_token"] = "<|begin_of_text|>";
  const jinja::Value value = jinja::Value::from_json(context);
  constexpr int kReps = 200;
  std::size_t bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kReps; ++i) {
    const auto tmpl = jinja::Template::parse(source, jinja::Options::hugging_face());
    bytes += tmpl.render(value).size();
  }
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
      kReps;
  std::printf("[ jinja    ] parse + render of a 21-message chat: %.1f us (%zu bytes)\n", us,
              bytes / kReps);
  EXPECT_LT(us, 1000.0);
}

TEST(JinjaCli, ChatTemplateRendersAFile) {
  test::ScratchDir dir;
  test::write_file(dir / "t.jinja",
                   "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n"
                   "{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
                   "{{ tools | length }}{{ eos_token }}");
  test::write_file(dir / "m.json", R"([{"role": "user", "content": "héllo"}])");
  test::write_file(dir / "tools.json", R"([{"name": "a"}, {"name": "b"}])");
  auto r = test::run_cli({"chat-template", "--template", (dir / "t.jinja").string(), "--messages",
                          (dir / "m.json").string(), "--tools", (dir / "tools.json").string(),
                          "--add-generation-prompt", "--bos", "<s>", "--eos", "</s>"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<s>[user] héllo\n[assistant]2</s>");
  r = test::run_cli({"chat-template", "--template",
                     (test::fixtures_dir() / "templates/Qwen-Qwen2.5-7B-Instruct.jinja").string(),
                     "--messages", (dir / "m.json").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nhéllo<|im_end|>\n");
}

TEST(JinjaCli, ChatTemplateErrorsAreOneLine) {
  test::ScratchDir dir;
  test::write_file(dir / "bad.jinja", "x\n{% for m in messages %}");
  test::write_file(dir / "raise.jinja", "{{ raise_exception('no system role') }}");
  test::write_file(dir / "m.json", "[]");
  auto r = test::run_cli({"chat-template", "--template", (dir / "bad.jinja").string(), "--messages",
                          (dir / "m.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: template: line 2, column 24: unexpected end of template, expected 'else' or "
            "'endfor'\n");
  r = test::run_cli({"chat-template", "--template", (dir / "raise.jinja").string(), "--messages",
                     (dir / "m.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "error: template: line 1: raise_exception: no system role\n");
}

}  // namespace
}  // namespace ep
