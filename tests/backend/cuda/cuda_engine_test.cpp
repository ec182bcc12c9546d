// The GPU transformer against the CPU one: logits of synthetic models (plain, grouped-query,
// biased, head_dim 16 to 128) and of the reference fixtures, batched decode against sequences
// decoded alone, graph replay against direct launches, and the cloud prompt's published KV.
#include "cuda_test_util.h"
#include "test_util.h"

#ifdef EP_HAVE_CUDA
#include "core/error.h"
#include "core/npy.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "model/model.h"
#include "model/synth.h"
#include "runtime/transformer.h"

#include <algorithm>

namespace ep::cuda {
namespace {

using test::rel_l2;

std::vector<double> widen(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

double top1_agreement(const std::vector<float>& a, const std::vector<float>& b, int64_t vocab) {
  const auto rows = int64_t(a.size()) / vocab;
  int64_t agree = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const auto ra = a.begin() + r * vocab, rb = b.begin() + r * vocab;
    agree += std::max_element(ra, ra + vocab) - ra == std::max_element(rb, rb + vocab) - rb;
  }
  return double(agree) / double(rows);
}

std::vector<float> cpu_logits(const Model& m, const std::vector<int32_t>& ids) {
  ThreadPool pool(2);
  Transformer tf(m, int64_t(ids.size()), pool);
  std::vector<float> logits;
  tf.forward(ids, logits, true);
  return logits;
}

std::vector<int32_t> random_ids(int n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = int32_t(r() % uint64_t(vocab));
  return ids;
}

struct SynthCase {
  const char* name;
  std::string arch;
  int64_t embd, heads, kv_heads, ff;
  int64_t window = 0;
};

HParams synth_hparams(const SynthCase& c) {
  HParams hp = *synth_shape("tinyllama-1.1b");
  hp.arch = c.arch;
  hp.n_vocab = 512;
  hp.n_embd = c.embd;
  hp.n_layer = 2;
  hp.n_head = c.heads;
  hp.n_head_kv = c.kv_heads;
  hp.head_dim = c.embd / c.heads;
  hp.n_ff = c.ff;
  hp.rope_layout = c.arch == "qwen2" ? RopeLayout::RotateHalf : RopeLayout::AdjacentPairs;
  hp.attn_qkv_bias = c.arch == "qwen2";
  hp.tied_embeddings = c.arch == "qwen2";
  hp.sliding_window = c.window;
  return hp;
}

const SynthCase kSynth[] = {
    {"mha-hd64", "llama", 256, 4, 4, 512},           {"gqa-hd32", "llama", 256, 8, 2, 384},
    {"bias-hd64", "qwen2", 256, 4, 2, 512},          {"mha-hd128", "llama", 512, 4, 4, 768},
    {"gqa-hd16-window", "llama", 64, 4, 2, 128, 50},
};

// Prefill (all logits) then a few decode steps, against the CPU transformer fed the same tokens.
void expect_matches_cpu(const Model& m, const std::vector<int32_t>& prompt, int steps, double bar,
                        const std::string& what) {
  const int64_t vocab = m.hp.n_vocab;
  EngineOptions eo;
  eo.max_ctx = int64_t(prompt.size()) + steps;
  Engine engine(m, eo);
  const int seq = engine.open_sequence();
  std::vector<float> gpu;
  engine.prefill(seq, prompt, &gpu, true);
  const auto cpu = cpu_logits(m, prompt);
  const double err = rel_l2(widen(gpu), widen(cpu));
  std::cout << what << ": prefill rel_l2 " << err << " top1 " << top1_agreement(gpu, cpu, vocab)
            << "\n";
  EXPECT_LT(err, bar) << what;
  EXPECT_GE(top1_agreement(gpu, cpu, vocab), 0.9) << what;

  std::vector<int32_t> ids = prompt;
  for (int s = 0; s < steps; ++s) {
    const int32_t next =
        int32_t(std::max_element(gpu.end() - vocab, gpu.end()) - (gpu.end() - vocab));
    ids.push_back(next);
    std::vector<float> step;
    std::vector<int32_t> greedy;
    const int seqs[] = {seq};
    engine.decode(seqs, std::span(&ids.back(), 1), &step, &greedy);
    const auto ref = cpu_logits(m, ids);
    const std::vector<float> ref_last(ref.end() - vocab, ref.end());
    const double e = rel_l2(widen(step), widen(ref_last));
    EXPECT_LT(e, bar) << what << " decode step " << s;
    EXPECT_EQ(greedy[0], std::max_element(step.begin(), step.end()) - step.begin());
    gpu = step;
  }
}

TEST(CudaEngine, SyntheticModelsMatchCpu) {
  EP_REQUIRE_CUDA_DEVICE();
  test::ScratchDir dir;
  for (const auto& c : kSynth) {
    const HParams hp = synth_hparams(c);
    const auto path = dir / (std::string(c.name) + ".gguf");
    write_synthetic_model(hp, DType::F16, c.name, path, 7, 2);
    const auto m = load_model(path);
    // 150 tokens: three pages, the last one partial; then decode across nothing new.
    expect_matches_cpu(*m, random_ids(150, hp.n_vocab, 3), 4, 3e-2, c.name);
  }
}

TEST(CudaEngine, FixturesMatchCpuAndReference) {
  EP_REQUIRE_CUDA_DEVICE();
  const auto models = test::fixtures_dir() / "models";
  for (const char* name :
       {"llama-gqa", "llama3-rope", "qwen2-bias", "mistral-mha", "qwen2-bias-bf16"}) {
    const auto m = load_model(models / name);
    const auto ids =
        parse_token_list(test::read_file(models / name / "reference" / "prompt_150.txt"));
    expect_matches_cpu(*m, ids, 3, 3e-2, name);
    // Against the float64 reference of Hugging Face transformers too.
    const auto ref_path = models / name / "reference" / "logits_150.npy";
    if (!std::filesystem::exists(ref_path)) continue;
    const NpyArray ref = read_npy(ref_path);
    EngineOptions eo;
    eo.max_ctx = int64_t(ids.size());
    Engine engine(*m, eo);
    std::vector<float> gpu;
    engine.prefill(engine.open_sequence(), ids, &gpu, true);
    std::vector<double> refd(ref.data.begin(), ref.data.end());
    const double err = rel_l2(widen(gpu), refd);
    std::cout << name << ": against the transformers reference rel_l2 " << err << "\n";
    EXPECT_LT(err, 3e-2) << name;
  }
}

// Sequences of different lengths decoded in one batch give what each gives alone, with and
// without graphs; chunked prefill (prompt in two parts) equals one pass.
TEST(CudaEngine, BatchedDecodeMatchesSingleSequences) {
  EP_REQUIRE_CUDA_DEVICE();
  test::ScratchDir dir;
  const HParams hp = synth_hparams(kSynth[1]);
  write_synthetic_model(hp, DType::F16, "gqa", dir / "m.gguf", 11, 2);
  const auto m = load_model(dir / "m.gguf");
  const int lens[] = {70, 5, 129};
  const int steps = 5;
  const auto run = [&](bool batched, bool graphs) {
    EngineOptions eo;
    eo.max_seqs = 3;
    eo.max_ctx = 200;
    eo.graphs = graphs;
    Engine e(*m, eo);
    std::vector<int> seqs;
    std::vector<int32_t> next;
    std::vector<float> logits;
    for (int i = 0; i < 3; ++i) {
      seqs.push_back(e.open_sequence());
      const auto ids = random_ids(lens[i], hp.n_vocab, 100 + uint64_t(i));
      // Two chunks: the second attends to the first through the cache.
      const auto cut = ids.begin() + lens[i] / 2;
      if (cut != ids.begin())
        e.prefill(seqs.back(), std::vector<int32_t>(ids.begin(), cut), nullptr);
      e.prefill(seqs.back(), std::vector<int32_t>(cut, ids.end()), &logits);
      next.push_back(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    }
    std::vector<float> all;
    for (int s = 0; s < steps; ++s) {
      if (batched) {
        e.decode(seqs, next, &logits, &next);
        all.insert(all.end(), logits.begin(), logits.end());
      } else {
        for (int i = 0; i < 3; ++i) {
          std::vector<int32_t> g;
          const int one[] = {seqs[size_t(i)]};
          e.decode(one, std::span(&next[size_t(i)], 1), &logits, &g);
          next[size_t(i)] = g[0];
          all.insert(all.end(), logits.begin(), logits.end());
        }
      }
    }
    return all;
  };
  const auto alone = run(false, false);
  const auto batched = run(true, true);
  const auto batched_direct = run(true, false);
  // Batch-1 steps use the GEMV kernel, batched ones cuBLAS: equal up to bf16 rounding.
  EXPECT_LT(rel_l2(widen(batched), widen(alone)), 2e-2);
  EXPECT_EQ(batched, batched_direct);  // graph replay launches the same work
}

// The cloud prompt's keys and values as the GPU publishes them, layer by layer, against the CPU
// transformer's layer observer.
TEST(CudaEngine, CloudPromptKvMatchesCpu) {
  EP_REQUIRE_CUDA_DEVICE();
  const auto m = load_model(test::fixtures_dir() / "models" / "llama-gqa");
  const auto ids = random_ids(100, m->hp.n_vocab, 5);
  const int64_t row = m->hp.n_head_kv * m->hp.head_dim;
  std::vector<std::vector<float>> cpu_k, cpu_v, gpu_k, gpu_v;
  ThreadPool pool(2);
  Transformer tf(*m, 100, pool);
  tf.set_layer_sink([&](int64_t, const float* k, const float* v, int64_t n) {
    cpu_k.emplace_back(k, k + n * row);
    cpu_v.emplace_back(v, v + n * row);
  });
  std::vector<float> logits;
  tf.forward(ids, logits, false);
  EngineOptions eo;
  eo.max_ctx = 100;
  Engine e(*m, eo);
  std::vector<int64_t> order;
  e.prefill(e.open_sequence(), ids, nullptr, false,
            [&](int64_t l, const float* k, const float* v, int64_t n) {
              order.push_back(l);
              gpu_k.emplace_back(k, k + n * row);
              gpu_v.emplace_back(v, v + n * row);
            });
  ASSERT_EQ(gpu_k.size(), cpu_k.size());
  for (size_t l = 0; l < order.size(); ++l) {
    EXPECT_EQ(order[l], int64_t(l));
    EXPECT_LT(rel_l2(widen(gpu_k[l]), widen(cpu_k[l])), 2e-2) << "layer " << l;
    EXPECT_LT(rel_l2(widen(gpu_v[l]), widen(cpu_v[l])), 2e-2) << "layer " << l;
  }
}

TEST(CudaEngine, ClearErrors) {
  EP_REQUIRE_CUDA_DEVICE();
  const auto m = load_model(test::fixtures_dir() / "models" / "llama-gqa");
  EngineOptions eo;
  eo.max_ctx = 10;
  Engine e(*m, eo);
  const int seq = e.open_sequence();
  EXPECT_THROW(e.open_sequence(), Error);
  EXPECT_THROW(e.prefill(seq, random_ids(11, m->hp.n_vocab, 1), nullptr), Error);
  const std::vector<int32_t> bad = {int32_t(m->hp.n_vocab)};
  EXPECT_THROW(e.prefill(seq, bad, nullptr), Error);
}

}  // namespace
}  // namespace ep::cuda

#else
TEST(CudaEngine, NotBuilt) {
  GTEST_SKIP() << "this build has no CUDA backend";
}
#endif

// Without the backend or a device, --device cuda is one clear error and a non-zero exit.
TEST(CudaCli, DeviceCudaFailsClearlyWithoutDevice) {
  if (ep::cuda::device_available()) GTEST_SKIP() << "a CUDA device is present";
  const auto r = ep::test::run_cli({"bench", "--device", "cuda", "--shape", "llama2-7b"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cuda"), std::string::npos) << r.err;
}
