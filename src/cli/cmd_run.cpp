// edgeprompt run --model M --tokens 1,2,3 [-n N]: greedy generation from token ids.
#include "cli/command.h"
#include "core/token_list.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/transformer.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <memory>

namespace ep::cli {

Command add_run(CLI::App& root) {
  struct Options {
    std::string model, tokens;
    int n_predict = 32;
    int threads = ThreadPool::default_threads();
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("run", "Generate tokens from a prompt");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory")->required();
  app->add_option("--tokens", o->tokens, "Prompt as comma-separated token ids")->required();
  app->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->check(CLI::Range(0, 1 << 20));
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  return {app, [o] {
            using clock = std::chrono::steady_clock;
            const std::vector<int32_t> prompt = parse_token_list(o->tokens);
            const auto model = load_model(o->model);
            ThreadPool pool(o->threads);
            Transformer tf(*model, int64_t(prompt.size()) + o->n_predict, pool);
            std::vector<float> logits;
            const auto t0 = clock::now();
            tf.forward(prompt, logits, false);
            const auto t1 = clock::now();
            std::vector<int32_t> out;
            for (int i = 0; i < o->n_predict; ++i) {
              const auto next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
              out.push_back(next);
              fmt::print("{}{}", i ? "," : "", next);
              std::fflush(stdout);
              if (i + 1 < o->n_predict) tf.forward(std::span(&next, 1), logits, false);
            }
            fmt::print("\n");
            const auto t2 = clock::now();
            const double pp = std::chrono::duration<double>(t1 - t0).count();
            const double tg = std::chrono::duration<double>(t2 - t1).count();
            fmt::print(stderr, "prompt: {} tokens, {:.1f} tok/s; generation: {} tokens, {:.1f} tok/s\n",
                       prompt.size(), double(prompt.size()) / pp, out.size(),
                       out.empty() ? 0.0 : double(out.size()) / tg);
            return 0;
          }};
}

}  // namespace ep::cli
