// Logits against float64 references computed by Hugging Face transformers
// (tools/make_reference.py): the HF directories themselves and GGUF files our converter writes.
#include "convert/converter.h"
#include "core/npy.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "kernels/cpu/cpu_features.h"
#include "model/model.h"
#include "runtime/transformer.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

namespace ep {
namespace {

const std::filesystem::path kModels = test::fixtures_dir() / "models";
const char* const kArchitectures[] = {"llama-gqa", "llama3-rope", "qwen2-bias", "mistral-mha"};
const int kPromptLengths[] = {8, 40, 150};

std::vector<int32_t> read_ids(const std::filesystem::path& p) {
  return parse_token_list(test::read_file(p));
}

// How the prompt goes through the forward pass: as one batch (the prefill kernels) or one token
// at a time (the decode kernels).
enum class Feed { Batch, OneAtATime };

std::vector<float> compute_logits(const std::filesystem::path& model_path,
                                  const std::vector<int32_t>& ids,
                                  kernels::Precision precision = kernels::Precision::Exact,
                                  Feed feed = Feed::Batch) {
  const auto model = load_model(model_path);
  ThreadPool pool(2);
  Transformer tf(*model, int64_t(ids.size()), pool);
  tf.set_precision(precision);
  std::vector<float> logits;
  if (feed == Feed::Batch) {
    tf.forward(ids, logits, true);
    return logits;
  }
  std::vector<float> step;
  for (const int32_t id : ids) {
    tf.forward(std::span(&id, 1), step, false);
    logits.insert(logits.end(), step.begin(), step.end());
  }
  return logits;
}

struct Fidelity {
  double rel_l2;  // ||ours - ref|| / ||ref||
  double top1;    // fraction of positions whose argmax agrees
};

Fidelity compare(const std::vector<float>& ours, const NpyArray& ref) {
  EXPECT_EQ(ref.shape.size(), 2u);
  EXPECT_EQ(ours.size(), ref.data.size());
  const int64_t vocab = ref.shape[1];
  double num = 0, den = 0;
  int64_t agree = 0;
  for (int64_t r = 0; r < ref.shape[0]; ++r) {
    int64_t a = 0, b = 0;
    for (int64_t c = 0; c < vocab; ++c) {
      const size_t i = size_t(r * vocab + c);
      const double d = double(ours[i]) - ref.data[i];
      num += d * d;
      den += ref.data[i] * ref.data[i];
      if (ours[i] > ours[size_t(r * vocab + a)]) a = c;
      if (ref.data[i] > ref.data[size_t(r * vocab + b)]) b = c;
    }
    agree += a == b;
  }
  return {std::sqrt(num / den), double(agree) / double(ref.shape[0])};
}

std::filesystem::path reference(const std::string& model, int n, const std::string& suffix = "") {
  return kModels / model / "reference" / ("logits_" + std::to_string(n) + suffix + ".npy");
}
std::filesystem::path prompt(const std::string& model, int n) {
  return kModels / model / "reference" / ("prompt_" + std::to_string(n) + ".txt");
}

TEST(Fidelity, HuggingFaceDirectoriesF32) {
  for (const char* m : kArchitectures) {
    for (int n : kPromptLengths) {
      const auto f =
          compare(compute_logits(kModels / m, read_ids(prompt(m, n))), read_npy(reference(m, n)));
      SCOPED_TRACE(::testing::Message() << m << " prompt " << n);
      EXPECT_LE(f.rel_l2, 1e-3);
      EXPECT_GE(f.top1, 0.99);
      RecordProperty(std::string(m) + "_" + std::to_string(n), std::to_string(f.rel_l2));
    }
  }
}

TEST(Fidelity, ShardedBf16HuggingFaceDirectory) {
  const std::string m = "qwen2-bias-bf16";
  for (int n : kPromptLengths) {
    const auto f =
        compare(compute_logits(kModels / m, read_ids(prompt(m, n))), read_npy(reference(m, n)));
    SCOPED_TRACE(::testing::Message() << m << " prompt " << n);
    EXPECT_LE(f.rel_l2, 2.5e-3);
    EXPECT_GE(f.top1, 0.99);
  }
}

struct DtypeBar {
  DType type;
  double max_rel_l2;  // against the float32 model's reference (the bars)
  double min_top1;
};

// Against the reference of the original float32 weights. bf16 and q4_0 round the weights so
// coarsely that no engine meets 2.5e-3 / 1.5e-1 there (docs/fidelity.md has the numbers); their
// bars apply to the model as stored, checked in ConvertedGgufMatchesItsStoredWeights.
TEST(Fidelity, ConvertedGgufAgainstFloat32Reference) {
  const DtypeBar bars[] = {
      {DType::F32, 1e-3, 0.99}, {DType::F16, 2.5e-3, 0.99}, {DType::Q8_0, 5e-2, 0.0}};
  test::ScratchDir dir;
  for (const char* m : kArchitectures) {
    for (const auto& bar : bars) {
      const auto path = dir / (std::string(m) + "-" + std::string(dtype_name(bar.type)) + ".gguf");
      convert_hf_to_gguf(kModels / m, path, bar.type);
      for (int n : kPromptLengths) {
        const auto f =
            compare(compute_logits(path, read_ids(prompt(m, n))), read_npy(reference(m, n)));
        SCOPED_TRACE(::testing::Message() << m << " " << dtype_name(bar.type) << " prompt " << n);
        EXPECT_LE(f.rel_l2, bar.max_rel_l2);
        EXPECT_GE(f.top1, bar.min_top1);
      }
    }
  }
}

// The same forward pass in transformers on weights rounded exactly as each GGUF type stores them:
// what the file means. Here every type must agree to float32 rounding, and the bars for
// bf16 (2.5e-3, top-1 0.99) and q4_0 (1.5e-1) hold with a wide margin.
TEST(Fidelity, ConvertedGgufMatchesItsStoredWeights) {
  test::ScratchDir dir;
  for (const char* m : kArchitectures) {
    for (const char* t : {"bf16", "q8_0", "q4_0"}) {
      const auto path = dir / (std::string(m) + "-" + t + ".gguf");
      convert_hf_to_gguf(kModels / m, path, *dtype_from_name(t));
      const auto f = compare(compute_logits(path, read_ids(prompt(m, 40))),
                             read_npy(reference(m, 40, std::string(".") + t)));
      SCOPED_TRACE(::testing::Message() << m << " " << t);
      EXPECT_LE(f.rel_l2, 1e-5);
      EXPECT_GE(f.top1, 0.99);
    }
  }
}

// The fast precision (8-bit activations for Q8_0/Q4_0; f16 or bf16 activations for F16/BF16
// where the CPU has those kernels) on the instruction set in use (ctest reruns this suite with
// EP_ISA=avx2 and scalar), for the prompt as one batch (prefill kernels) and token by token
// (decode kernels), against the transformers reference of the weights as stored (F16: of the
// float32 weights, 1e-3 away). Measured on the fixtures (AVX-512): 8-bit 1.3-2.2e-2, 16-bit up to
// 9.5e-3 (the bf16 prefill GEMM rounds F16 weights to 8 bits), top-1 >= 0.925; the bars leave a
// third or more of margin.
TEST(Fidelity, FastPrecisionStaysNearStoredWeights) {
  struct Bar {
    const char* type;
    const char* reference_suffix;
    double max_rel_l2;
  };
  const Bar bars[] = {{"f16", "", 1.5e-2},
                      {"bf16", ".bf16", 1.5e-2},
                      {"q8_0", ".q8_0", 3e-2},
                      {"q4_0", ".q4_0", 3e-2}};
  test::ScratchDir dir;
  for (const char* m : kArchitectures) {
    for (const Bar& bar : bars) {
      const auto path = dir / (std::string(m) + "-" + bar.type + ".gguf");
      convert_hf_to_gguf(kModels / m, path, *dtype_from_name(bar.type));
      const auto ids = read_ids(prompt(m, 40));
      const auto ref = read_npy(reference(m, 40, bar.reference_suffix));
      const auto batch = compare(compute_logits(path, ids, kernels::Precision::Fast), ref);
      const auto steps =
          compare(compute_logits(path, ids, kernels::Precision::Fast, Feed::OneAtATime), ref);
      SCOPED_TRACE(::testing::Message() << m << " " << bar.type << " on "
                                        << kernels::cpu_isa_name(kernels::active_isa()));
      EXPECT_LE(batch.rel_l2, bar.max_rel_l2);
      EXPECT_LE(steps.rel_l2, bar.max_rel_l2);
      EXPECT_GE(batch.top1, 0.9);
      EXPECT_GE(steps.top1, 0.9);
    }
  }
}

TEST(Fidelity, GreedyContinuationMatchesReference) {
  for (const char* m : kArchitectures) {
    const auto model = load_model(kModels / m);
    const auto ids = read_ids(prompt(m, 40));
    const auto expected = read_ids(kModels / m / "reference" / "greedy_40.txt");
    ThreadPool pool(2);
    Transformer tf(*model, int64_t(ids.size() + expected.size()), pool);
    std::vector<float> logits;
    tf.forward(ids, logits, false);
    std::vector<int32_t> got;
    for (size_t i = 0; i < expected.size(); ++i) {
      const auto next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
      got.push_back(next);
      tf.forward(std::span(&next, 1), logits, false);
    }
    EXPECT_EQ(got, expected) << m;
  }
}

TEST(Fidelity, LogitsCommandWritesNpy) {
  test::ScratchDir dir;
  const std::string m = "llama3-rope";
  const std::string ids = test::read_file(prompt(m, 8));
  const auto r = test::run_cli({"logits", "--model", (kModels / m).string(), "--tokens",
                                ids.substr(0, ids.find('\n')), "--out", (dir / "l.npy").string(),
                                "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const NpyArray a = read_npy(dir / "l.npy");
  ASSERT_EQ(a.shape, (std::vector<int64_t>{8, 1000}));
  const auto f =
      compare(std::vector<float>(a.data.begin(), a.data.end()), read_npy(reference(m, 8)));
  EXPECT_LE(f.rel_l2, 1e-3);
}

}  // namespace
}  // namespace ep
