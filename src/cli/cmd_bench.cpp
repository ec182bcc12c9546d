// edgeprompt bench --model M [--threads N] [-p 512] [-n 128] [--reps R] [--json]
//
// Prefill: one batched forward pass over a p-token prompt from an empty context (logits for the
// last token only), like llama-bench's pp test. Decode: n single-token forward passes from an
// empty context, like llama-bench's tg test. Each is repeated `reps` times after one untimed
// warm-up pass; mean ± sd are printed, plus achieved memory bandwidth for decode (bytes of
// weights and KV cache read per token × tokens/s), arithmetic rate for prefill and peak RSS.
#include "cli/bench_cuda.h"
#include "cli/command.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul.h"
#include "model/model.h"
#include "runtime/transformer.h"

#include <fmt/core.h>
#include <sys/resource.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>

namespace ep::cli {
namespace {

struct Stats {
  double mean = 0, sd = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / double(v.size() - 1));
  }
  return s;
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;  // Linux reports KiB
}

// Weight bytes a forward pass streams for one token: every layer matrix plus the output head
// (the embedding table contributes one row only).
int64_t matrix_bytes_per_token(const Model& m) {
  int64_t b = 0;
  const auto bytes = [](const MatrixView& v) { return v.rows * v.row_bytes(); };
  for (const auto& l : m.layers) {
    b += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo);
    b += bytes(l.w_gate) + bytes(l.w_up) + bytes(l.w_down);
  }
  b += bytes(m.output) + m.tok_embd.row_bytes();
  return b;
}

// Multiply-accumulate count of the layer matrices for one token (the output head is separate).
int64_t layer_macs_per_token(const Model& m) {
  int64_t n = 0;
  const auto macs = [](const MatrixView& v) { return v.rows * v.cols; };
  for (const auto& l : m.layers) {
    n += macs(l.wq) + macs(l.wk) + macs(l.wv) + macs(l.wo);
    n += macs(l.w_gate) + macs(l.w_up) + macs(l.w_down);
  }
  return n;
}

}  // namespace

Command add_bench(CLI::App& root) {
  struct Options {
    std::string model;
    int threads = ThreadPool::default_threads();
    int n_prompt = 512;
    int n_gen = 128;
    int reps = 3;
    bool json = false;
    uint32_t seed = 1;
    std::string precision = "fast";
    std::string device = "cpu", shape, gpu_weights = "bf16";
    std::vector<int> batches = {1};
    int decode_prompt = 512;
    bool profile = false, serving = false;
    int shared_prefix = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("bench", "Measure prefill and decode speed");
  app->add_option("--model,-m", o->model, "GGUF file or Hugging Face directory");
  app->add_option("--threads,-t", o->threads, "Threads")->check(CLI::Range(1, 1024));
  app->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens for the prefill test (0: skip)")
      ->check(CLI::Range(0, 1 << 20));
  app->add_option("-n,--n-gen", o->n_gen, "Generated tokens for the decode test (0: skip)")
      ->check(CLI::Range(0, 1 << 20));
  app->add_option("--reps,-r", o->reps, "Timed repetitions of each test")
      ->check(CLI::Range(1, 1000));
  app->add_option("--seed", o->seed, "Seed of the random prompt token ids");
  app->add_option("--precision", o->precision,
                  "Matrix arithmetic: fast (8-bit activations for q8_0/q4_0 like llama.cpp, bf16 "
                  "for f16/bf16 prefill, f16 for f16 decode) or exact (f32 activations, what "
                  "`logits` uses)")
      ->check(CLI::IsMember({"fast", "exact"}));
  app->add_flag("--json", o->json, "Print one JSON object with the results on the last line");
  app->add_option("--device", o->device, "cpu, or cuda (batched GPU prefill and decode)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app->add_option(
         "--gpu-weights", o->gpu_weights,
         "cuda: quantised matrices expanded to bf16 on load (default), or kept as their GGUF "
         "blocks (native: less memory; not yet verified on a GPU)")
      ->check(CLI::IsMember({"native", "bf16"}));
  app->add_option(
      "--shape", o->shape,
      "cuda: random bf16 weights of a named shape drawn on the device, instead of --model");
  app->add_option("--batch", o->batches, "cuda: decode batch sizes (e.g. --batch 1 64)")
      ->check(CLI::Range(1, 4096));
  app->add_option("--decode-prompt", o->decode_prompt,
                  "cuda: tokens prefilled into each sequence before the decode steps")
      ->check(CLI::Range(0, 1 << 20));
  app->add_flag("--profile", o->profile, "cuda: also time the prefill's stages");
  app->add_flag("--serving", o->serving,
                "cuda: time the serving engine's decode steps over its block pool, with the shared "
                "prefix in each sequence's blocks (none) and held once (relay)");
  app->add_option("--shared-prefix", o->shared_prefix,
                  "cuda --serving: tokens of the system prompt every sequence shares")
      ->check(CLI::Range(0, 1 << 20));
  return {app, [o] {
            if (o->device == "cuda") {
              if (o->model.empty() == o->shape.empty())
                fail("bench --device cuda: give --model or --shape");
              CudaBenchOptions c;
              c.model = o->model;
              c.shape = o->shape;
              c.n_prompt = o->n_prompt;
              c.n_gen = o->n_gen;
              c.decode_prompt = o->decode_prompt;
              c.batches = o->batches;
              c.reps = o->reps;
              c.seed = o->seed;
              c.json = o->json;
              c.profile = o->profile;
              c.native_weights = o->gpu_weights == "native";
              c.serving = o->serving;
              c.shared_prefix = o->shared_prefix;
              return c.serving ? run_cuda_serving_bench(c) : run_cuda_bench(c);
            }
            if (o->model.empty()) fail("bench: --model is required");
            if (!o->shape.empty()) fail("bench: --shape needs --device cuda");
            using clock = std::chrono::steady_clock;
            const auto t_load0 = clock::now();
            const auto model = load_model(o->model);
            const double load_s = std::chrono::duration<double>(clock::now() - t_load0).count();
            const HParams& hp = model->hp;
            ThreadPool pool(o->threads);
            const int64_t n_ctx = std::max<int64_t>(std::max(o->n_prompt, o->n_gen), 1);
            Transformer tf(*model, n_ctx, pool);
            tf.set_precision(o->precision == "fast" ? kernels::Precision::Fast
                                                    : kernels::Precision::Exact);

            std::mt19937 rng(o->seed);
            std::uniform_int_distribution<int32_t> tok(0, int32_t(hp.n_vocab - 1));
            std::vector<int32_t> prompt(size_t(o->n_prompt));
            for (auto& t : prompt) t = tok(rng);
            std::vector<float> logits;

            const auto run_prefill = [&] {
              tf.reset();
              const auto t0 = clock::now();
              tf.forward(prompt, logits, false);
              return std::chrono::duration<double>(clock::now() - t0).count();
            };
            const auto run_decode = [&] {
              tf.reset();
              int32_t next = int32_t(hp.bos_token >= 0 ? hp.bos_token : 1);
              const auto t0 = clock::now();
              for (int i = 0; i < o->n_gen; ++i) {
                tf.forward(std::span(&next, 1), logits, false);
                next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
              }
              return std::chrono::duration<double>(clock::now() - t0).count();
            };

            std::vector<double> pp, tg;  // tokens per second of each rep
            if (o->n_prompt > 0) {
              run_prefill();  // warm-up: page in the weights, size the buffers
              for (int r = 0; r < o->reps; ++r) pp.push_back(double(o->n_prompt) / run_prefill());
            }
            if (o->n_gen > 0) {
              run_decode();
              for (int r = 0; r < o->reps; ++r) tg.push_back(double(o->n_gen) / run_decode());
            }
            const Stats spp = stats(pp), stg = stats(tg);

            // Decode streams the weights once per token plus the K and V rows cached so far
            // (on average half the generated length).
            const int64_t kv_row_bytes = hp.n_head_kv * hp.head_dim * int64_t(sizeof(float)) * 2;
            const double kv_bytes = double(hp.n_layer * kv_row_bytes) * (o->n_gen + 1) / 2.0;
            const double bytes_per_token = double(matrix_bytes_per_token(*model)) + kv_bytes;
            const double decode_gbps = stg.mean * bytes_per_token / 1e9;
            // Prefill: 2 flops per multiply-accumulate of the layer matrices for every token,
            // the output head for the last token, and causal attention (QKᵀ and PV).
            const double p = o->n_prompt;
            const double attn_flops =
                4.0 * double(hp.n_layer * hp.n_head * hp.head_dim) * p * (p + 1) / 2;
            const double prefill_flops = 2.0 * double(layer_macs_per_token(*model)) * p +
                                         2.0 * double(model->output.rows * model->output.cols) +
                                         attn_flops;
            const double prefill_gflops = p > 0 ? prefill_flops / (p / spp.mean) / 1e9 : 0.0;
            const int64_t rss = peak_rss_bytes();
            const int64_t file_bytes = model->weight_bytes();

            fmt::print("model: {} ({} layers, n_embd {}, {:.2f} GB of weights)\n", o->model,
                       hp.n_layer, hp.n_embd, double(file_bytes) / 1e9);
            fmt::print("threads: {}, cpu: {}{}, precision: {}, load {:.2f} s\n", o->threads,
                       kernels::cpu_isa_name(kernels::active_isa()),
                       kernels::cpu_features().avx512vnni ? "+vnni" : "", o->precision, load_s);
            if (!pp.empty()) {
              fmt::print("prefill pp{}: {:.2f} ± {:.2f} tok/s, {:.1f} GFLOP/s\n", o->n_prompt,
                         spp.mean, spp.sd, prefill_gflops);
            }
            if (!tg.empty()) {
              fmt::print("decode  tg{}: {:.2f} ± {:.2f} tok/s, {:.1f} GB/s ({:.1f} MB per token)\n",
                         o->n_gen, stg.mean, stg.sd, decode_gbps, bytes_per_token / 1e6);
            }
            fmt::print("peak RSS: {:.1f} MB\n", double(rss) / 1e6);
            if (o->json) {
              nlohmann::json j = {
                  {"model", o->model},
                  {"threads", o->threads},
                  {"isa", kernels::cpu_isa_name(kernels::active_isa())},
                  {"precision", o->precision},
                  {"n_prompt", o->n_prompt},
                  {"n_gen", o->n_gen},
                  {"reps", o->reps},
                  {"prefill_tok_s", spp.mean},
                  {"prefill_tok_s_sd", spp.sd},
                  {"prefill_tok_s_reps", pp},
                  {"prefill_GFLOPs", prefill_gflops},
                  {"decode_tok_s", stg.mean},
                  {"decode_tok_s_sd", stg.sd},
                  {"decode_tok_s_reps", tg},
                  {"decode_GBps", decode_gbps},
                  {"decode_bytes_per_token", bytes_per_token},
                  {"peak_rss_bytes", rss},
                  {"weight_bytes", file_bytes},
              };
              fmt::print("{}\n", j.dump());
            }
            return 0;
          }};
}

}  // namespace ep::cli
