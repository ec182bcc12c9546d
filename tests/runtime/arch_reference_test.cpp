// Qwen3, Phi-3 and Gemma 3 against transformers: tiny random-weight models that transformers
// built, with its float64 logits (tools/make_arch_reference.py, tests/fixtures/arch), computed by
// the engine from the directories in float32, and from the GGUF files our converter writes.
#include "convert/converter.h"
#include "core/npy.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "model/model.h"
#include "runtime/transformer.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ep {
namespace {

namespace fs = std::filesystem;

const fs::path kArch = test::fixtures_dir() / "arch";

std::vector<float> logits_of(const fs::path& model_path, const std::vector<int32_t>& ids) {
  const auto model = load_model(model_path);
  ThreadPool pool(2);
  Transformer tf(*model, int64_t(ids.size()), pool);
  std::vector<float> logits;
  tf.forward(ids, logits, true);
  return logits;
}

double rel_l2(const std::vector<float>& ours, const NpyArray& ref) {
  EXPECT_EQ(ours.size(), ref.data.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < ours.size() && i < ref.data.size(); ++i) {
    num += (ours[i] - ref.data[i]) * (ours[i] - ref.data[i]);
    den += ref.data[i] * ref.data[i];
  }
  return std::sqrt(num / den);
}

TEST(ArchReference, LogitsMatchTransformersFloat64) {
  test::ScratchDir dir;
  int checked = 0;
  for (const char* m : {"qwen3-qk-norm", "phi3-fused", "gemma3-swa"}) {
    std::vector<fs::path> models = {kArch / m};
    // This Gemma 3's layer pattern and score scale are not what GGUF gemma3 files can express.
    if (std::string(m) != "gemma3-swa") {
      models.push_back(dir / (std::string(m) + ".gguf"));
      convert_hf_to_gguf(kArch / m, models.back(), DType::F32);
    }
    for (const int n : {8, 40}) {
      const auto ids = parse_token_list(
          test::read_file(kArch / m / "reference" / ("prompt_" + std::to_string(n) + ".txt")));
      const NpyArray ref =
          read_npy(kArch / m / "reference" / ("logits_" + std::to_string(n) + ".npy"));
      for (const fs::path& path : models) {
        const double e = rel_l2(logits_of(path, ids), ref);
        SCOPED_TRACE(path.filename().string() + ", prompt " + std::to_string(n));
        EXPECT_LE(e, 1e-5);
        RecordProperty(path.filename().string() + "_" + std::to_string(n), std::to_string(e));
        std::printf("[ arch     ] %s prompt %d: relative L2 %.2e\n", path.filename().c_str(), n, e);
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 10);
}

}  // namespace
}  // namespace ep
