// edgeprompt synth --shape NAME --dtype f16|q8_0|q4_0 --out FILE.gguf
#include "cli/command.h"
#include "cli/progress.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "model/synth.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <memory>

namespace ep::cli {

Command add_synth(CLI::App& root) {
  struct Options {
    std::string shape, dtype = "f16", out;
    uint64_t seed = 42;
    int threads = ThreadPool::default_threads();
  };
  auto o = std::make_shared<Options>();
  CLI::App* app =
      root.add_subcommand("synth", "Write a random-weight GGUF with the shape of a real model");
  app->add_option("--shape", o->shape,
                  fmt::format("One of: {}", fmt::join(synth_shape_names(), ", ")))
      ->required();
  app->add_option("--dtype", o->dtype, "Weight type: f32, f16, bf16, q8_0, q4_0");
  app->add_option("--out,-o", o->out, "Output .gguf file")->required();
  app->add_option("--seed", o->seed, "Random seed");
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  return {app, [o] {
            const auto hp = synth_shape(o->shape);
            if (!hp) {
              fail("--shape: unknown shape '{}' (one of: {})", o->shape,
                   fmt::join(synth_shape_names(), ", "));
            }
            const auto type = dtype_from_name(o->dtype);
            if (!type) fail("--dtype: unknown type '{}' (f32, f16, bf16, q8_0, q4_0)", o->dtype);
            {
              ProgressBar bar("writing");
              write_synthetic_model(*hp, *type, o->shape, o->out, o->seed, o->threads,
                                    [&](uint64_t d, uint64_t t) { bar.update(d, t); });
            }
            fmt::print(stderr, "wrote {}\n", o->out);
            return 0;
          }};
}

}  // namespace ep::cli
