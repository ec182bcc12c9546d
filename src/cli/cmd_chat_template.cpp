// edgeprompt chat-template --template FILE --messages M.json [--tools T.json]
//   [--add-generation-prompt] [--bos TEXT] [--eos TEXT]: renders a Jinja chat template the way
// Hugging Face does (trim_blocks, lstrip_blocks) and prints the prompt.
#include "cli/command.h"
#include "core/error.h"
#include "jinja/template.h"

#include <fmt/core.h>

#include <fstream>
#include <memory>
#include <sstream>

namespace ep::cli {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open {}", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::ordered_json read_json(const std::string& path) {
  try {
    return nlohmann::ordered_json::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", path, e.what());
  }
}

}  // namespace

Command add_chat_template(CLI::App& root) {
  struct Options {
    std::string template_file, messages, tools, bos, eos;
    bool add_generation_prompt = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app =
      root.add_subcommand("chat-template", "Render a Jinja chat template over a JSON chat");
  app->add_option("--template", o->template_file, "Jinja template file")->required();
  app->add_option("--messages", o->messages, "JSON file: the list of messages")->required();
  app->add_option("--tools", o->tools, "JSON file: the list of tools");
  app->add_flag("--add-generation-prompt", o->add_generation_prompt,
                "End with the start of the assistant's turn");
  app->add_option("--bos", o->bos, "bos_token");
  app->add_option("--eos", o->eos, "eos_token");
  return {app, [o] {
            const auto tmpl =
                jinja::Template::parse(read_text(o->template_file), jinja::Options::hugging_face());
            nlohmann::ordered_json context;
            context["messages"] = read_json(o->messages);
            if (!context["messages"].is_array()) fail("{}: expected a JSON list", o->messages);
            context["tools"] = o->tools.empty() ? nlohmann::ordered_json() : read_json(o->tools);
            context["add_generation_prompt"] = o->add_generation_prompt;
            context["bos_token"] = o->bos;
            context["eos_token"] = o->eos;
            fmt::print("{}", tmpl.render(context));
            return 0;
          }};
}

}  // namespace ep::cli
