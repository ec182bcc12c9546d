// edgeprompt detokenize --model M --tokens 1,2,3: the text of token ids.
#include "cli/command.h"
#include "cli/model_text.h"
#include "core/token_list.h"

#include <fmt/core.h>

#include <memory>

namespace ep::cli {

Command add_detokenize(CLI::App& root) {
  struct Options {
    std::string model, tokens;
    bool skip_special = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("detokenize", "Print the text of token ids");
  app->add_option("--model,-m", o->model,
                  "GGUF file (a model or a vocabulary only) or Hugging Face directory")
      ->required();
  app->add_option("--tokens", o->tokens, "Comma-separated token ids")->required();
  app->add_flag("--skip-special", o->skip_special, "Leave out control tokens such as <s>");
  return {app, [o] {
            const std::vector<int32_t> ids = parse_token_list(o->tokens);
            const auto tok = require_tokenizer(o->model);
            // Streamed, so a character cut at the end shows as U+FFFD instead of broken bytes.
            StreamingDetokenizer detok(*tok, o->skip_special);
            std::string text;
            for (const int32_t id : ids) text += detok.push(id);
            text += detok.flush();
            fmt::print("{}\n", text);
            return 0;
          }};
}

}  // namespace ep::cli
