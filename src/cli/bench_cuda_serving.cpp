// `edgeprompt bench --device cuda --serving`: the serving engine's decode steps on the GPU, the
// step the continuous-batching loop runs most. B sequences share a system prompt of S tokens and
// each has P tokens of its own; they decode together for n_gen steps. `none` keeps the system
// prompt in every sequence's own blocks (PagedAttention: each step reads it B times); `relay`
// holds it once as a shared prefix, attended for all B rows in one pass (RelayAttention: read
// once a step). Bytes a step must read: the matrices, plus the KV each mode reads.
#include "backend/cuda/cuda_engine.h"
#include "backend/cuda/serving_forward.h"
#include "cli/bench_cuda.h"
#include "core/error.h"
#include "model/synth.h"
#include "runtime/kv_block_pool.h"
#include "runtime/paged_sequence_kv.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>

namespace ep::cli {
namespace {

struct Mode {
  const char* name;
  bool relay;
};

}  // namespace

int run_cuda_serving_bench(const CudaBenchOptions& o) {
  using clock = std::chrono::steady_clock;
  cuda::require_device();
  if (o.shape.empty()) fail("bench --serving: give --shape (random weights drawn on the device)");
  const auto hp_opt = synth_shape(o.shape);
  if (!hp_opt) fail("--shape: unknown shape '{}'", o.shape);
  const HParams& hp = *hp_opt;
  const int64_t S = o.shared_prefix, P = std::max(o.decode_prompt, 1), G = std::max(o.n_gen, 1);
  cuda::EngineOptions eo;
  eo.max_ctx = std::max<int64_t>(S, 1);
  cuda::Engine engine(hp, o.seed, eo);
  const int64_t bt = o.kv_block, kv_dim = hp.n_head_kv * hp.head_dim;
  const int max_b = *std::max_element(o.batches.begin(), o.batches.end());
  const int64_t n_blocks = int64_t(max_b) * ((S + P + G + bt - 1) / bt + 1);
  KvBlockPool pool(n_blocks, bt, hp.n_layer, kv_dim, /*host_storage=*/false);
  const auto steps = cuda::serving_forward(engine, n_blocks, bt);

  std::mt19937 rng(o.seed);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(hp.n_vocab - 1));
  const auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = tok(rng);
    return t;
  };
  const std::vector<int32_t> system = random_tokens(S);
  // The shared prefix's KV, as the cloud's prompt store holds it (f32 on the host).
  std::shared_ptr<KvSegment> prefix;
  if (S > 0) {
    prefix = std::make_shared<KvSegment>(hp.n_layer, S, hp.n_head_kv, hp.head_dim);
    const int seq = engine.open_sequence();
    engine.prefill(seq, system, nullptr, false,
                   [&](int64_t l, const float* k, const float* v, int64_t) {
                     prefix->publish_layer(l, k, v);
                   });
    engine.close_sequence(seq);
  }

  const double kv_tok = double(2 * hp.n_layer * kv_dim * 2);  // bf16 K and V
  nlohmann::json j = {{"shape", o.shape},   {"device", engine.device_name()},
                      {"shared_prefix", S}, {"own_prompt", P},
                      {"n_gen", G},         {"kv_block", bt},
                      {"reps", o.reps},     {"weight_bytes", engine.weight_bytes()}};
  fmt::print("serving steps: {} on {}, shared prefix {} + own {} tokens, {} decode steps\n",
             o.shape, engine.device_name(), S, P, G);
  for (const int b : o.batches) {
    for (const Mode mode : {Mode{"none", false}, Mode{"relay", true}}) {
      if (mode.relay && S == 0) continue;
      std::vector<double> step_ms;
      for (int r = -1; r < o.reps; ++r) {
        // b sequences: their prompts prefilled (not timed), then G greedy decode steps.
        std::vector<std::unique_ptr<PagedSequenceKv>> kv;
        std::vector<std::vector<int32_t>> tokens;
        for (int i = 0; i < b; ++i) {
          kv.push_back(std::make_unique<PagedSequenceKv>(pool));
          std::vector<int32_t> t = mode.relay ? std::vector<int32_t>() : system;
          const auto own = random_tokens(P);
          t.insert(t.end(), own.begin(), own.end());
          tokens.push_back(std::move(t));
          const int64_t need = (int64_t(tokens.back().size()) + G + bt - 1) / bt;
          for (int64_t k = 0; k < need; ++k) {
            const auto block = pool.allocate();
            if (!block) fail("bench --serving: the block pool is too small");
            kv.back()->blocks().push_back(*block);
          }
        }
        std::vector<float> logits;
        std::vector<int32_t> next;
        for (int i = 0; i < b; ++i) {
          const auto& t = tokens[size_t(i)];
          for (size_t at = 0; at < t.size(); at += 2048) {
            const size_t n = std::min<size_t>(2048, t.size() - at);
            const BatchChunk c{std::span(t).subspan(at, n), int64_t(at),
                               kv[size_t(i)].get(),         mode.relay ? prefix.get() : nullptr,
                               at + n == t.size(),          kv[size_t(i)]->blocks()};
            steps->forward(std::span(&c, 1), logits, &next);
          }
          tokens[size_t(i)].push_back(next.at(0));
        }
        const auto t0 = clock::now();
        for (int64_t s = 0; s < G; ++s) {
          std::vector<BatchChunk> chunks;
          for (int i = 0; i < b; ++i) {
            const auto& t = tokens[size_t(i)];
            chunks.push_back({std::span(t).last(1), int64_t(t.size()) - 1, kv[size_t(i)].get(),
                              mode.relay ? prefix.get() : nullptr, true, kv[size_t(i)]->blocks()});
          }
          steps->forward(chunks, logits, &next);
          for (int i = 0; i < b; ++i) tokens[size_t(i)].push_back(next[size_t(i)]);
        }
        const double secs = std::chrono::duration<double>(clock::now() - t0).count();
        for (auto& k : kv) {
          for (const int32_t block : k->blocks()) pool.release(block);
        }
        if (r >= 0) step_ms.push_back(secs * 1e3 / double(G));
      }
      const double ms = median(step_ms);
      // KV a step reads: each sequence's own keys (on average P + G/2, plus S in none mode) and,
      // in relay mode, the shared prefix once.
      const double own = mode.relay ? double(P) + G / 2.0 : double(S + P) + G / 2.0;
      const double bytes = double(engine.weight_bytes()) +
                           (double(b) * own + (mode.relay ? double(S) : 0.0)) * kv_tok;
      const double gbps = bytes / (ms / 1e3) / 1e9;
      fmt::print("  batch {:3} {:5}: {:7.2f} ms/step, {:7.0f} tok/s, {:6.0f} GB/s (weights + KV)\n",
                 b, mode.name, ms, b * 1e3 / ms, gbps);
      const std::string key = fmt::format("b{}_{}", b, mode.name);
      j[key] = {{"ms", ms},
                {"tok_s", b * 1e3 / ms},
                {"GBps", gbps},
                {"bytes", bytes},
                {"ms_reps", step_ms}};
    }
  }
  if (o.json) fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace ep::cli
