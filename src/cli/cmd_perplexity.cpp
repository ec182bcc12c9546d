// edgeprompt perplexity --model M --file TEXT [--ctx N] [--stride S] [--threads T] [--json]
#include "cli/command.h"
#include "cli/model_text.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/perplexity.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <cstdio>
#include <memory>
#include <string>

namespace ep::cli {

Command add_perplexity(CLI::App& root) {
  struct Options {
    std::string model, file;
    int64_t ctx = 512, stride = 0;
    int threads = ThreadPool::default_threads();
    bool json = false, no_bos = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app =
      root.add_subcommand("perplexity", "Perplexity of a text under the model (sliding window)");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory")->required();
  app->add_option("--file,-f", o->file, "Text file (UTF-8), scored as one sequence")->required();
  app->add_option("--ctx,-c", o->ctx, "Window length in tokens")->check(CLI::Range(2, 1 << 24));
  app->add_option("--stride", o->stride, "Tokens between window starts (default: ctx / 2)");
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  app->add_flag("--no-bos", o->no_bos, "Do not put the BOS token the model would add first");
  app->add_flag("--json", o->json, "Print one JSON object on the last line");
  return {app, [o] {
            const auto model = load_model(o->model);
            const auto tok = require_tokenizer(*model);
            const MappedFile mapped(o->file);
            const std::string text(reinterpret_cast<const char*>(mapped.data()), mapped.size());
            const auto tokens = tok->encode(text, !o->no_bos && tok->add_bos_default(), false);
            const int64_t stride = o->stride > 0 ? o->stride : std::max<int64_t>(1, o->ctx / 2);
            ThreadPool pool(o->threads);
            const bool tty = isatty(fileno(stderr)) != 0;
            const auto r = perplexity(
                *model, tokens, o->ctx, stride, pool,
                [&](int64_t w, int64_t n, const PerplexityResult& so_far) {
                  if (tty || w + 1 == n || (w + 1) % 20 == 0) {
                    fmt::print(stderr, "{}[{}/{}] perplexity {:.4f}, {:.0f} tok/s{}",
                               tty ? "\r" : "", w + 1, n, so_far.perplexity,
                               double(so_far.n_evaluated) / so_far.seconds, tty ? "" : "\n");
                  }
                });
            if (tty) fmt::print(stderr, "\n");
            const double tok_s = double(r.n_evaluated) / r.seconds;
            fmt::print(
                "perplexity {:.4f} ({:.4f} nats/token) over {} tokens of {}; {} windows of "
                "{} tokens, stride {}; {:.1f} s, {:.0f} tok/s, {} threads\n",
                r.perplexity, r.mean_nll, r.n_scored, o->file, r.n_windows, o->ctx, stride,
                r.seconds, tok_s, o->threads);
            if (o->json) {
              const nlohmann::json j = {{"perplexity", r.perplexity},
                                        {"mean_nll", r.mean_nll},
                                        {"tokens_scored", r.n_scored},
                                        {"tokens_evaluated", r.n_evaluated},
                                        {"windows", r.n_windows},
                                        {"ctx", o->ctx},
                                        {"stride", stride},
                                        {"seconds", r.seconds},
                                        {"tok_s", tok_s},
                                        {"threads", o->threads}};
              fmt::print("{}\n", j.dump());
            }
            return 0;
          }};
}

}  // namespace ep::cli
