// edgeprompt logits --model PATH --tokens 1,2,3 --out FILE.npy [--threads N]
#include "cli/command.h"
#include "core/token_list.h"
#include "core/npy.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/transformer.h"

#include <memory>

namespace ep::cli {

Command add_logits(CLI::App& root) {
  struct Options {
    std::string model, tokens, out;
    int threads = ThreadPool::default_threads();
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("logits", "Write the logits at every position as .npy");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory")->required();
  app->add_option("--tokens", o->tokens, "Comma-separated token ids")->required();
  app->add_option("--out,-o", o->out, "Output .npy file, float32 [n_tokens, n_vocab]")->required();
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  return {app, [o] {
            const std::vector<int32_t> tokens = parse_token_list(o->tokens);
            const auto model = load_model(o->model);
            ThreadPool pool(o->threads);
            Transformer tf(*model, int64_t(tokens.size()), pool);
            std::vector<float> logits;
            tf.forward(tokens, logits, /*all_logits=*/true);
            write_npy_f32(o->out, {int64_t(tokens.size()), model->hp.n_vocab}, logits.data());
            return 0;
          }};
}

}  // namespace ep::cli
