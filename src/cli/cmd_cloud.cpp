// edgeprompt cloud --model M --listen HOST:PORT (--tls-cert F --tls-key K | --insecure-http)
// [--cache-dir DIR] [--auth-file F | --admin-token-file F]
#include "backend/cuda/cuda_engine.h"
#include "backend/cuda/serving_forward.h"
#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/listen_address.h"
#include "cli/serve_service.h"
#include "cloud/cloud_service.h"
#include "core/error.h"
#include "http/auth.h"
#include "model/model.h"
#include "tokenizer/model_tokenizer.h"
#include "tokenizer/tokenizer.h"

#include <fmt/core.h>

#include <filesystem>
#include <memory>
#include <thread>

namespace ep::cli {

Command add_cloud(CLI::App& root) {
  struct Options {
    std::string model, listen = "127.0.0.1:8080", cache_dir, admin_token, kv_dtype = "f16";
    std::string admin_token_file, auth_file;
    double tenant_rate = 0, tenant_burst = 0;
    std::string device = "cpu", gpu_weights = "bf16";
    int64_t max_prompt = 0;
    double gpu_memory_fraction = 0.9;
    int threads = ThreadPool::default_threads();
    EngineFlags engine{cloud_engine_options(), ""};
    ServerTransport transport;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("cloud", "Serve cloud prompts' KV caches to edges over HTTP");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory")->required();
  app->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)");
  app->add_option("--cache-dir", o->cache_dir, "Directory for the persistent KV cache");
  app->add_option("--auth-file", o->auth_file,
                  "Tenants' tokens: one 'TENANT admin|edge|client SHA256-HEX' a line");
  app->add_option("--tenant-rate", o->tenant_rate,
                  "Requests a second each tenant may send (0: no limit; over it: 429)")
      ->check(CLI::Range(0.0, 1e9));
  app->add_option("--tenant-burst", o->tenant_burst,
                  "Requests a tenant may send at once (default: the rate rounded up)")
      ->check(CLI::Range(0.0, 1e9));
  app->add_option("--admin-token-file", o->admin_token_file,
                  "Without --auth-file: file whose first line is the token PUT and DELETE need "
                  "(or EDGEPROMPT_ADMIN_TOKEN)");
  app->add_option("--admin-token", o->admin_token, "Refused: a token in argv is visible in ps")
      ->group("");
  app->add_option("--kv-dtype", o->kv_dtype, "KV payload type: f16 (default) or f32");
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  app->add_option("--device", o->device, "Where cloud prompts are prefilled: cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app->add_option(
         "--gpu-weights", o->gpu_weights,
         "cuda: quantised matrices expanded to bf16 on load (default), or kept as their GGUF "
         "blocks (native: less memory; not yet verified on a GPU)")
      ->check(CLI::IsMember({"native", "bf16"}));
  app->add_option("--max-prompt", o->max_prompt,
                  "Longest cloud prompt in tokens (cuda; default: the model's training context)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  app->add_option("--gpu-memory-fraction", o->gpu_memory_fraction,
                  "cuda: share of the GPU's free memory (after the weights) for the completions' "
                  "KV blocks")
      ->check(CLI::Range(0.01, 1.0));
  add_engine_flags(app, o->engine, "--kv-cache-bytes", true);
  o->transport.limits = http::cloud_http_limits();
  add_server_transport_flags(app, o->transport);
  return {
      app, [o] {
        const StopSignals signals;  // before any thread starts
        check_server_transport(o->transport, "cloud");
        CloudOptions opt;
        opt.tls = o->transport.tls;
        opt.limits = o->transport.limits;
        const auto log = open_request_log(o->transport);
        opt.request_log = log.get();
        std::tie(opt.host, opt.port) = parse_listen_address(o->listen);
        opt.cache_dir = o->cache_dir;
        if (!o->admin_token.empty()) {
          fail(
              "--admin-token on the command line is visible to every user (ps): use "
              "--admin-token-file FILE or the EDGEPROMPT_ADMIN_TOKEN environment variable");
        }
        opt.tenant_rate = o->tenant_rate;
        opt.tenant_burst = o->tenant_burst;
        opt.admin_token = http::read_secret(o->admin_token_file, "EDGEPROMPT_ADMIN_TOKEN");
        if (!o->auth_file.empty()) {
          if (!opt.admin_token.empty()) {
            fail(
                "--auth-file holds the admin tokens: drop --admin-token-file / "
                "EDGEPROMPT_ADMIN_TOKEN");
          }
          opt.auth = std::make_shared<const http::AuthTable>(http::AuthTable::load(o->auth_file));
        }
        opt.threads = o->threads;
        opt.engine_threads = o->threads;
        opt.engine = engine_options(o->engine);
        const auto dtype = kv_dtype_from_name(o->kv_dtype);
        if (!dtype) fail("--kv-dtype: '{}' is not f16 or f32", o->kv_dtype);
        opt.kv_dtype = *dtype;
        if (o->device == "cuda") cuda::require_device();
        const auto model = load_model(o->model);
        const auto tokenizer = load_tokenizer(*model->source);
        // On the GPU one engine prefills one cloud prompt at a time, each in a fresh sequence,
        // and runs the completions' steps over a block pool in the rest of its memory (the
        // engine serialises its callers).
        std::unique_ptr<cuda::Engine> engine;
        if (o->device == "cuda") {
          cuda::EngineOptions eo;
          eo.native_weights = o->gpu_weights == "native";
          eo.max_ctx = o->max_prompt > 0           ? o->max_prompt
                       : model->hp.n_ctx_train > 0 ? model->hp.n_ctx_train
                                                   : 4096;
          engine = std::make_unique<cuda::Engine>(*model, eo);
          opt.prefill = [&](std::span<const int32_t> tokens, const LayerSink& layer) {
            const int seq = engine->open_sequence();
            try {
              engine->prefill(seq, tokens, nullptr, false, layer);
            } catch (...) {
              engine->close_sequence(seq);
              throw;
            }
            engine->close_sequence(seq);
          };
          const int64_t block = opt.engine.kv_block;
          const int64_t blocks = cuda::pool_blocks_for(*engine, o->gpu_memory_fraction, block);
          opt.engine.kv_blocks = blocks;
          opt.step_forward = [&engine, blocks, block] {
            return cuda::serving_forward(*engine, blocks, block);
          };
          fmt::print(
              stderr,
              "cloud: prefilling on {} (prompts up to {} tokens); completions over {} "
              "KV blocks of {} tokens ({:.1f} GiB)\n",
              engine->device_name(), eo.max_ctx, opt.engine.kv_blocks, block,
              double(opt.engine.kv_blocks * engine->kv_block_bytes(block)) / double(1ull << 30));
        }
        CloudService service(*model, tokenizer.get(), opt);
        return serve_until_stopped(service, signals, "cloud", fmt::format("model {}", o->model));
      }};
}

}  // namespace ep::cli
