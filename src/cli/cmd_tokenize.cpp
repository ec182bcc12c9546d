// edgeprompt tokenize --model M (--text "..." | --file F) [--no-bos] [--parse-special]: the ids
// as JSON.
#include "cli/command.h"
#include "cli/model_text.h"
#include "core/error.h"
#include "core/mapped_file.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <memory>

namespace ep::cli {

Command add_tokenize(CLI::App& root) {
  struct Options {
    std::string model, text, file;
    bool no_bos = false, parse_special = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  app->add_option("--model,-m", o->model,
                  "GGUF file (a model or a vocabulary only) or Hugging Face directory")
      ->required();
  auto* text = app->add_option("--text", o->text, "Text to tokenize (UTF-8)");
  auto* file = app->add_option("--file", o->file, "File whose whole content is tokenized (UTF-8)");
  text->excludes(file);
  file->excludes(text);
  app->add_flag("--no-bos", o->no_bos, "Do not add the BOS token the model would add");
  app->add_flag("--parse-special", o->parse_special,
                "Turn control tokens written in the text (e.g. <|im_start|>) into those tokens");
  return {app, [o] {
            if (o->file.empty() && o->text.empty()) fail("tokenize: give --text or --file");
            if (!o->file.empty()) {
              const MappedFile mapped(o->file);
              o->text.assign(reinterpret_cast<const char*>(mapped.data()), mapped.size());
            }
            const auto tok = require_tokenizer(o->model);
            const auto ids =
                tok->encode(o->text, !o->no_bos && tok->add_bos_default(), o->parse_special);
            fmt::print("[{}]\n", fmt::join(ids, ","));
            return 0;
          }};
}

}  // namespace ep::cli
