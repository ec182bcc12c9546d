// Quantised weights on the GPU: the device's dequantisation against core/quant's dequantize_row
// bit for bit, the fused dequantise-GEMV against a float64 reference on random blocks of every
// type, and whole models (the llama-quantize fixtures) against the CPU engine and against the
// same model expanded to bf16 on load.
#include "cuda_test_util.h"
#include "test_util.h"

#ifdef EP_HAVE_CUDA
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/kernels.h"
#include "core/half.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/transformer.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace ep::cuda {
namespace {

using test::rel_l2;

const DType kTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                        DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Byte offsets of a block's fp16 scales (every other byte is quants or packed sub-scales, any
// value of which is valid).
std::vector<int> f16_fields(DType t) {
  switch (t) {
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K:
      return {0, 2};
    case DType::Q2_K:
      return {80, 82};
    case DType::Q3_K:
      return {108};
    case DType::Q6_K:
      return {208};
    default:
      return {0};
  }
}

// Random valid blocks for a [rows, cols] matrix: random quant bytes, finite scales.
std::vector<uint8_t> random_blocks(DType t, int64_t rows, int64_t cols, std::mt19937_64& rng) {
  const int64_t bytes = dtype_block_bytes(t), per_row = cols / dtype_block_elems(t);
  std::vector<uint8_t> b(size_t(rows * per_row * bytes));
  for (auto& x : b) x = uint8_t(rng());
  std::normal_distribution<float> scale(0.0f, 0.01f);
  for (int64_t k = 0; k < rows * per_row; ++k) {
    for (int off : f16_fields(t)) {
      const uint16_t h = f32_to_f16(scale(rng));
      std::memcpy(b.data() + size_t(k * bytes + off), &h, 2);
    }
  }
  return b;
}

std::vector<float> host_dequant(DType t, const std::vector<uint8_t>& b, int64_t rows,
                                int64_t cols) {
  std::vector<float> v(size_t(rows * cols));
  const int64_t row_bytes = dtype_row_bytes(t, cols);
  for (int64_t r = 0; r < rows; ++r)
    dequantize_row(t, b.data() + r * row_bytes, v.data() + r * cols, cols);
  return v;
}

template <typename T>
DeviceBuffer<T> upload(const std::vector<T>& v) {
  DeviceBuffer<T> d(v.size());
  check(cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  return d;
}

template <typename T>
std::vector<T> download(const DeviceBuffer<T>& d) {
  check(cudaDeviceSynchronize(), "kernel");
  std::vector<T> v(d.size());
  check(cudaMemcpy(v.data(), d.get(), v.size() * sizeof(T), cudaMemcpyDeviceToHost), "download");
  return v;
}

DeviceBuffer<float> poisoned(size_t n) {
  return upload(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
}

TEST(CudaQuant, DequantisesBitIdenticalToHost) {
  EP_REQUIRE_CUDA_DEVICE();
  std::mt19937_64 rng(11);
  const int64_t rows = 6, cols = 768;
  for (DType t : kTypes) {
    const auto blocks = random_blocks(t, rows, cols, rng);
    const auto host = host_dequant(t, blocks, rows, cols);
    const auto dw = upload(blocks);
    DeviceBuffer<bf16_t> out(size_t(rows * cols));
    dequantize_rows(t, dw.get(), rows, int(cols), out.get(), nullptr);
    const auto got = download(out);
    int64_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) bad += got[i] != f32_to_bf16(host[i]);
    EXPECT_EQ(bad, 0) << dtype_name(t);

    // The embedding lookup of a quantised table: bf16-rounded values, widened.
    const std::vector<int32_t> tokens = {3, 0, 5, 3};
    const auto dt = upload(tokens);
    auto x = poisoned(tokens.size() * size_t(cols));
    embed_rows_quant(t, dw.get(), dt.get(), int(tokens.size()), int(cols), x.get(), nullptr);
    const auto xs = download(x);
    bad = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      for (int64_t c = 0; c < cols; ++c) {
        const float want = bf16_to_f32(f32_to_bf16(host[size_t(tokens[i] * cols + c)]));
        bad += std::memcmp(&xs[i * size_t(cols) + size_t(c)], &want, 4) != 0;
      }
    }
    EXPECT_EQ(bad, 0) << dtype_name(t) << " embed";
  }
}

// Every quantised tensor of the llama-quantize fixtures, dequantised on the device, equals the
// host's values rounded to bf16.
TEST(CudaQuant, FixtureTensorsDequantiseAsOnTheHost) {
  EP_REQUIRE_CUDA_DEVICE();
  int tensors = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::fixtures_dir() / "kquant")) {
    if (e.path().extension() != ".gguf") continue;
    const auto m = load_model(e.path());
    for (const auto& l : m->layers) {
      for (const MatrixView* v : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
        if (!device_quant_type(v->type)) continue;
        const auto* p = static_cast<const uint8_t*>(v->data);
        const std::vector<uint8_t> blocks(p, p + v->rows * v->row_bytes());
        const auto host = host_dequant(v->type, blocks, v->rows, v->cols);
        const auto dw = upload(blocks);
        DeviceBuffer<bf16_t> out(size_t(v->rows * v->cols));
        dequantize_rows(v->type, dw.get(), v->rows, int(v->cols), out.get(), nullptr);
        const auto got = download(out);
        int64_t bad = 0;
        for (size_t i = 0; i < got.size(); ++i) bad += got[i] != f32_to_bf16(host[i]);
        EXPECT_EQ(bad, 0) << e.path().filename() << " " << dtype_name(v->type);
        ++tensors;
      }
    }
  }
  EXPECT_GT(tensors, 50);
}

// The fused GEMV in every output mode and batch size against float64 sums of the host's
// dequantised weights: each element within 1e-5 of the sum of |w x| (f32 accumulation).
TEST(CudaQuant, FusedGemvMatchesFloat64) {
  EP_REQUIRE_CUDA_DEVICE();
  std::mt19937_64 rng(12);
  const int rows = 37, cols = 1024, ldy = rows + 5, row0 = 3;
  for (DType t : kTypes) {
    const auto blocks = random_blocks(t, 2 * rows, cols, rng);  // gate rows, then up rows
    const auto w = host_dequant(t, blocks, 2 * rows, cols);
    const auto dw = upload(blocks);
    for (int n : {1, 2, 5, 8}) {
      auto xf = test::random_floats(size_t(n * cols), rng);
      std::vector<bf16_t> xb(xf.size());
      for (size_t i = 0; i < xf.size(); ++i) {
        xb[i] = f32_to_bf16(xf[i]);
        xf[i] = bf16_to_f32(xb[i]);
      }
      const auto dx = upload(xb);
      std::vector<double> ref(size_t(n * 2 * rows)), mag(ref.size());
      for (int b = 0; b < n; ++b) {
        for (int r = 0; r < 2 * rows; ++r) {
          double s = 0, a = 0;
          for (int c = 0; c < cols; ++c) {
            const double p = double(w[size_t(r * cols + c)]) * double(xf[size_t(b * cols + c)]);
            s += p;
            a += std::fabs(p);
          }
          ref[size_t(b * 2 * rows + r)] = s;
          mag[size_t(b * 2 * rows + r)] = a;
        }
      }
      QuantGemv g;
      g.type = t;
      g.w = dw.get();
      g.rows = rows;
      g.cols = cols;
      g.x = dx.get();
      g.n = n;
      g.ldy = ldy;
      g.row0 = row0;
      for (GemvOut mode : {GemvOut::F32, GemvOut::F32Add}) {
        std::vector<float> init(size_t(n * ldy), std::numeric_limits<float>::quiet_NaN());
        for (int b = 0; b < n; ++b) {
          for (int r = 0; r < rows; ++r) init[size_t(b * ldy + row0 + r)] = 0.5f;
        }
        auto y = upload(init);
        g.y = y.get();
        g.out = mode;
        gemv_quant(g, nullptr);
        const auto got = download(y);
        for (int b = 0; b < n; ++b) {
          for (int r = 0; r < rows; ++r) {
            const double want =
                ref[size_t(b * 2 * rows + r)] + (mode == GemvOut::F32Add ? 0.5 : 0.0);
            EXPECT_NEAR(got[size_t(b * ldy + row0 + r)], want,
                        1e-5 * mag[size_t(b * 2 * rows + r)] + 1e-7)
                << dtype_name(t) << " n " << n << " row " << r;
          }
          EXPECT_TRUE(std::isnan(got[size_t(b * ldy)])) << "rows before row0 untouched";
        }
      }
      DeviceBuffer<bf16_t> yb(size_t(n * ldy));
      g.y = yb.get();
      g.out = GemvOut::BF16;
      gemv_quant(g, nullptr);
      const auto gotb = download(yb);
      for (int b = 0; b < n; ++b) {
        for (int r = 0; r < rows; ++r) {
          const double want = ref[size_t(b * 2 * rows + r)];
          EXPECT_NEAR(bf16_to_f32(gotb[size_t(b * ldy + row0 + r)]), want,
                      std::fabs(want) / 128 + 1e-5 * mag[size_t(b * 2 * rows + r)] + 1e-7)
              << dtype_name(t) << " bf16 n " << n;
        }
      }
    }
    // SwiGLU on the gate|up pair, batch 1.
    auto xf = test::random_floats(size_t(cols), rng);
    std::vector<bf16_t> xb(xf.size());
    for (size_t i = 0; i < xf.size(); ++i) {
      xb[i] = f32_to_bf16(xf[i]);
      xf[i] = bf16_to_f32(xb[i]);
    }
    const auto dx = upload(xb);
    DeviceBuffer<bf16_t> h{size_t(rows)};
    QuantGemv g;
    g.type = t;
    g.w = dw.get();
    g.up = static_cast<const uint8_t*>(dw.get()) + rows * dtype_row_bytes(t, cols);
    g.rows = rows;
    g.cols = cols;
    g.x = dx.get();
    g.y = h.get();
    g.ldy = rows;
    g.out = GemvOut::SwiGLU;
    gemv_quant(g, nullptr);
    const auto goth = download(h);
    std::vector<double> got, want;
    for (int r = 0; r < rows; ++r) {
      double gs = 0, us = 0;
      for (int c = 0; c < cols; ++c) {
        gs += double(w[size_t(r * cols + c)]) * xf[size_t(c)];
        us += double(w[size_t((rows + r) * cols + c)]) * xf[size_t(c)];
      }
      want.push_back(gs / (1 + std::exp(-gs)) * us);
      got.push_back(bf16_to_f32(goth[size_t(r)]));
    }
    EXPECT_LT(rel_l2(got, want), 1e-2) << dtype_name(t) << " swiglu";
  }
}

std::vector<double> widen(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

std::vector<float> cpu_logits(const Model& m, const std::vector<int32_t>& ids) {
  ThreadPool pool(2);
  Transformer tf(m, int64_t(ids.size()), pool);
  std::vector<float> logits;
  tf.forward(ids, logits, true);
  return logits;
}

std::vector<std::filesystem::path> fixture_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(test::fixtures_dir() / "kquant"))
    if (e.path().extension() == ".gguf") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<int32_t> prompt_of(int64_t vocab) {
  std::vector<int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(int32_t((i * 37 + 11) % vocab));
  return ids;
}

// Greedy continuation of the prompt: `steps` batch-1 decode steps. Their logits go to `logits`.
std::vector<int32_t> greedy(Engine& engine, const std::vector<int32_t>& prompt, int steps,
                            std::vector<float>* prefill_logits, std::vector<float>* logits) {
  const int seq = engine.open_sequence();
  std::vector<float> l;
  engine.prefill(seq, prompt, &l, true);
  if (prefill_logits) *prefill_logits = l;
  const int64_t vocab = engine.hparams().n_vocab;
  std::vector<int32_t> out = {
      int32_t(std::max_element(l.end() - vocab, l.end()) - (l.end() - vocab))};
  for (int s = 0; s < steps; ++s) {
    std::vector<float> step;
    std::vector<int32_t> next;
    const int seqs[] = {seq};
    engine.decode(seqs, std::span(&out.back(), 1), &step, &next);
    if (logits) logits->insert(logits->end(), step.begin(), step.end());
    out.push_back(next[0]);
  }
  engine.close_sequence(seq);
  return out;
}

// Every fixture file on the GPU with native weights against the CPU engine: the prefill's logits
// (batched: dequantised into the scratch, then the GEMM) and the decode steps' (the fused GEMV),
// within CudaEngine.FixturesMatchCpuAndReference's bound; the matrices take their stored bytes.
TEST(CudaQuant, KquantFixturesMatchCpu) {
  EP_REQUIRE_CUDA_DEVICE();
  for (const auto& path : fixture_files()) {
    const auto m = load_model(path);
    const auto prompt = prompt_of(m->hp.n_vocab);
    EngineOptions eo;
    eo.native_weights = true;
    eo.max_ctx = 64;
    Engine engine(*m, eo);
    std::vector<float> pre, steps;
    const auto tokens = greedy(engine, prompt, 4, &pre, &steps);
    const std::string name = path.filename().string();
    const double err = rel_l2(widen(pre), widen(cpu_logits(*m, prompt)));
    std::cout << name << ": prefill rel_l2 " << err << "\n";
    EXPECT_LT(err, 3e-2) << name;
    std::vector<int32_t> ids = prompt;
    const int64_t vocab = m->hp.n_vocab;
    for (int s = 0; s < 4; ++s) {
      ids.push_back(tokens[size_t(s)]);
      const auto ref = cpu_logits(*m, ids);
      const std::vector<float> ref_last(ref.end() - vocab, ref.end());
      const std::vector<float> got(steps.begin() + s * vocab, steps.begin() + (s + 1) * vocab);
      EXPECT_LT(rel_l2(widen(got), widen(ref_last)), 3e-2) << name << " decode step " << s;
    }
    EngineOptions bf = eo;
    bf.native_weights = false;
    Engine expanded(*m, bf);
    if (path.stem() == "tiny-f16") {
      EXPECT_EQ(engine.weight_bytes(), expanded.weight_bytes()) << name;
    } else {
      EXPECT_LT(engine.weight_bytes(), expanded.weight_bytes()) << name;
    }
  }
}

// Native and bf16-expanded weights multiply the same bf16 values in batched products (prefill);
// decode's fused GEMV uses the unrounded values, within bf16 of them: the greedy tokens agree.
TEST(CudaQuant, NativeAndBf16WeightsGiveTheSameGreedyTokens) {
  EP_REQUIRE_CUDA_DEVICE();
  for (const char* file : {"tiny-Q4_K_M.gguf", "tiny-Q6_K.gguf", "tiny-Q5_0.gguf"}) {
    const auto m = load_model(test::fixtures_dir() / "kquant" / file);
    const auto prompt = prompt_of(m->hp.n_vocab);
    EngineOptions eo;
    eo.native_weights = true;
    eo.max_ctx = 64;
    Engine native(*m, eo);
    eo.native_weights = false;
    Engine expanded(*m, eo);
    std::vector<float> pa, pb, la, lb;
    const auto a = greedy(native, prompt, 16, &pa, &la);
    const auto b = greedy(expanded, prompt, 16, &pb, &lb);
    // The same weights; only the GEMM's algorithm (timed per engine) may differ.
    EXPECT_LT(rel_l2(widen(pa), widen(pb)), 1e-3) << file << " prefill";
    EXPECT_EQ(a, b) << file;
    EXPECT_LT(rel_l2(widen(la), widen(lb)), 1e-2) << file;
  }
}

}  // namespace
}  // namespace ep::cuda
#else
TEST(CudaQuant, NotBuilt) {
  GTEST_SKIP() << "this build has no CUDA backend";
}
#endif
