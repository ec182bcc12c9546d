#include "cli/bench_cuda.h"

#include "backend/cuda/cuda_engine.h"
#include "core/error.h"
#include "model/model.h"
#include "model/synth.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>
#include <random>

namespace ep::cli {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

namespace {

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

}  // namespace

int run_cuda_bench(const CudaBenchOptions& o) {
  using clock = std::chrono::steady_clock;
  cuda::require_device();
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  cuda::EngineOptions eo;
  eo.max_seqs = std::max(1, max_batch);
  eo.max_ctx = std::max<int64_t>({int64_t(o.n_prompt), int64_t(o.decode_prompt) + o.n_gen, 1});
  eo.native_weights = o.native_weights;

  const auto t_load0 = clock::now();
  std::unique_ptr<Model> model;
  std::unique_ptr<cuda::Engine> engine;
  std::string source;
  if (!o.shape.empty()) {
    const auto hp = synth_shape(o.shape);
    if (!hp) fail("--shape: unknown shape '{}'", o.shape);
    engine = std::make_unique<cuda::Engine>(*hp, o.seed, eo);
    source = o.shape + " (random bf16 weights on the device)";
  } else {
    model = load_model(o.model);
    engine = std::make_unique<cuda::Engine>(*model, eo);
    source = o.model;
  }
  const double load_s = std::chrono::duration<double>(clock::now() - t_load0).count();
  const HParams& hp = engine->hparams();

  std::mt19937 rng(o.seed);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(hp.n_vocab - 1));
  const auto random_tokens = [&](int n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = tok(rng);
    return t;
  };

  nlohmann::json j = {{"model", source},
                      {"device", engine->device_name()},
                      {"n_prompt", o.n_prompt},
                      {"n_gen", o.n_gen},
                      {"decode_prompt", o.decode_prompt},
                      {"reps", o.reps},
                      {"weight_bytes", engine->weight_bytes()},
                      {"gpu_weights", o.native_weights ? "native" : "bf16"}};
  fmt::print("model: {} ({} layers, n_embd {}, {:.2f} GB of matrices on {}), load {:.2f} s\n",
             source, hp.n_layer, hp.n_embd, double(engine->weight_bytes()) / 1e9,
             engine->device_name(), load_s);

  // Prefill: one pass over an n_prompt-token prompt in a fresh sequence, last token's logits.
  if (o.n_prompt > 0) {
    const auto prompt = random_tokens(o.n_prompt);
    std::vector<double> wall, dev;
    std::vector<float> logits;
    for (int r = -2; r < o.reps; ++r) {  // r < 0: warm-up (clocks, buffers, algorithm picks)
      const int seq = engine->open_sequence();
      const auto t0 = clock::now();
      engine->prefill(seq, prompt, &logits);
      const double s = std::chrono::duration<double>(clock::now() - t0).count();
      engine->close_sequence(seq);
      if (r >= 0) {
        wall.push_back(double(o.n_prompt) / s);
        dev.push_back(double(o.n_prompt) / engine->last_device_seconds());
      }
    }
    const double tok_s = median(wall);
    const double p = o.n_prompt;
    // Multiply-adds from the shapes: weight_bytes() counts quantised matrices as stored.
    const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    const double layer_params =
        double(hp.n_layer * hp.n_embd * (2 * q_dim + 2 * kv_dim + 3 * hp.n_ff));
    const double flops = 2.0 * layer_params * p + 2.0 * double(hp.n_vocab * hp.n_embd) +
                         4.0 * double(hp.n_layer * hp.n_head * hp.head_dim) * p * (p + 1) / 2;
    fmt::print("prefill pp{}: {:.0f} tok/s (median of {}; mean {:.0f}), {:.1f} TFLOP/s\n",
               o.n_prompt, tok_s, o.reps, mean(wall), flops / (p / tok_s) / 1e12);
    j["prefill_tok_s"] = tok_s;
    j["prefill_tok_s_mean"] = mean(wall);
    j["prefill_tok_s_reps"] = wall;
    j["prefill_tok_s_device"] = median(dev);
    j["prefill_TFLOPs"] = flops / (p / tok_s) / 1e12;
    if (o.profile) {
      engine->set_profiling(true);
      const int seq = engine->open_sequence();
      engine->prefill(seq, prompt, &logits);
      engine->close_sequence(seq);
      engine->set_profiling(false);
      nlohmann::json prof;
      fmt::print("prefill stages (one profiled pass, {:.2f} ms):\n",
                 engine->last_device_seconds() * 1e3);
      for (const auto& [stage, secs] : engine->last_profile()) {
        fmt::print("  {:<22} {:8.3f} ms\n", stage, secs * 1e3);
        prof[stage] = secs * 1e3;
      }
      j["prefill_profile_ms"] = prof;
    }
  }

  // Decode: B sequences, each prefilled with decode_prompt tokens, then n_gen greedy steps of
  // all B together. Time per step from the host clock (launch and copies included).
  const int64_t kv_token_bytes = 2 * hp.n_layer * hp.n_head_kv * hp.head_dim * 2;  // bf16 K and V
  for (const int b : o.batches) {
    if (o.n_gen <= 0) break;
    std::vector<double> step_ms;
    for (int r = -1; r < o.reps; ++r) {
      std::vector<int> seqs;
      std::vector<int32_t> next;
      std::vector<float> logits;
      for (int i = 0; i < b; ++i) {
        seqs.push_back(engine->open_sequence());
        const auto prompt = random_tokens(std::max(o.decode_prompt, 1));
        engine->prefill(seqs.back(), prompt, &logits);
        next.push_back(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
      }
      const auto t0 = clock::now();
      for (int s = 0; s < o.n_gen; ++s) engine->decode(seqs, next, nullptr, &next);
      const double secs = std::chrono::duration<double>(clock::now() - t0).count();
      for (int seq : seqs) engine->close_sequence(seq);
      if (r >= 0) step_ms.push_back(secs * 1e3 / o.n_gen);
    }
    const double ms = median(step_ms);
    const double tok_s = b * 1e3 / ms;
    // Bytes one step must read: the matrices once plus every sequence's cached keys and values
    // (on average decode_prompt + n_gen / 2 tokens).
    const double kv_bytes = double(b) * (o.decode_prompt + o.n_gen / 2.0) * double(kv_token_bytes);
    const double gbps = (double(engine->weight_bytes()) + kv_bytes) / (ms / 1e3) / 1e9;
    fmt::print("decode batch {}: {:.2f} ms/step, {:.0f} tok/s, {:.0f} GB/s (weights + KV)\n", b, ms,
               tok_s, gbps);
    const std::string key = "decode_b" + std::to_string(b);
    j[key + "_ms"] = ms;
    j[key + "_ms_mean"] = mean(step_ms);
    j[key + "_tok_s"] = tok_s;
    j[key + "_GBps"] = gbps;
    j[key + "_ms_reps"] = step_ms;
  }
  if (o.json) fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace ep::cli
