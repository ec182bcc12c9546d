// edgeprompt convert HF_DIR --dtype f32|f16|bf16|q8_0|q4_0 --out FILE.gguf
#include "cli/command.h"
#include "cli/progress.h"
#include "convert/converter.h"
#include "core/error.h"

#include <fmt/core.h>

#include <memory>

namespace ep::cli {

Command add_convert(CLI::App& root) {
  struct Options {
    std::string hf_dir, dtype = "f16", out;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("convert", "Convert a Hugging Face directory to GGUF");
  app->add_option("hf_dir", o->hf_dir, "Directory with config.json and *.safetensors")->required();
  app->add_option("--dtype", o->dtype, "Weight type: f32, f16, bf16, q8_0, q4_0");
  app->add_option("--out,-o", o->out, "Output .gguf file")->required();
  return {app, [o] {
            const auto type = dtype_from_name(o->dtype);
            if (!type) fail("--dtype: unknown type '{}' (f32, f16, bf16, q8_0, q4_0)", o->dtype);
            ConvertReport r;
            {
              ProgressBar bar("converting");
              r = convert_hf_to_gguf(o->hf_dir, o->out, *type,
                                     [&](uint64_t d, uint64_t t) { bar.update(d, t); });
            }
            fmt::print(stderr, "wrote {}: {} tensors, {:.2f} MiB", o->out, r.n_tensors,
                       double(r.bytes) / (1 << 20));
            if (r.n_fallback_f16 > 0) {
              fmt::print(stderr, " ({} tensors kept as f16: rows not a multiple of 32)",
                         r.n_fallback_f16);
            }
            fmt::print(stderr, "\n");
            return 0;
          }};
}

}  // namespace ep::cli
