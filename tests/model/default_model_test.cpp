// The trained default model in models/: our engine against the PyTorch model it was exported
// from (logits and held-out perplexity, both computed by tools/train/train.py on the GPU), and
// the chat behaviour it was trained for.
#include "core/npy.h"
#include "core/thread_pool.h"
#include "core/token_list.h"
#include "model/model.h"
#include "runtime/perplexity.h"
#include "runtime/transformer.h"
#include "test_util.h"
#include "tokenizer/model_tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

namespace ep {
namespace {

const auto kTraining = test::source_dir() / "models" / "training";

struct Agreement {
  double rel_l2, top1;
};

Agreement against_pytorch(const std::filesystem::path& gguf) {
  const auto ids = parse_token_list(test::read_file(kTraining / "reference_prompt.txt"));
  const NpyArray ref = read_npy(kTraining / "reference_logits.npy");
  const auto model = load_model(gguf);
  ThreadPool pool(2);
  Transformer tf(*model, int64_t(ids.size()), pool);
  std::vector<float> logits;
  tf.forward(ids, logits, true);
  EXPECT_EQ(ref.shape, (std::vector<int64_t>{int64_t(ids.size()), model->hp.n_vocab}));
  if (logits.size() != ref.data.size()) return {1e9, 0};
  const int64_t v = ref.shape[1];
  double num = 0, den = 0;
  int64_t agree = 0;
  for (int64_t r = 0; r < ref.shape[0]; ++r) {
    int64_t a = 0, b = 0;
    for (int64_t c = 0; c < v; ++c) {
      const size_t i = size_t(r * v + c);
      num += (logits[i] - ref.data[i]) * (logits[i] - ref.data[i]);
      den += ref.data[i] * ref.data[i];
      if (logits[i] > logits[size_t(r * v + a)]) a = c;
      if (ref.data[i] > ref.data[size_t(r * v + b)]) b = c;
    }
    agree += a == b;
  }
  return {std::sqrt(num / den), double(agree) / double(ref.shape[0])};
}

TEST(DefaultModel, LogitsMatchThePyTorchModel) {
  const auto f16 = against_pytorch(test::default_model("f16"));
  EXPECT_LE(f16.rel_l2, 2.5e-3);
  EXPECT_GE(f16.top1, 0.97);
  const auto q8 = against_pytorch(test::default_model("q8_0"));
  EXPECT_LE(q8.rel_l2, 5e-2);
  EXPECT_GE(q8.top1, 0.9);
}

// The check: the held-out perplexity our tool reports equals the PyTorch model's own
// evaluation (same tokens, same windows), up to the f16 rounding of the shipped weights.
TEST(DefaultModel, HeldOutPerplexityReproducesThePyTorchEvaluation) {
  const auto eval = nlohmann::json::parse(test::read_file(kTraining / "eval.json"));
  const auto model = load_model(test::default_model("f16"));
  const auto tok = load_tokenizer(*model->source);
  ASSERT_TRUE(tok);
  const auto ids =
      tok->encode(test::read_file(test::source_dir() / "models" / "heldout.txt"), true, false);
  ThreadPool pool(2);
  const auto r = perplexity(*model, ids, eval["ppl_ctx"].get<int64_t>(),
                            eval["ppl_stride"].get<int64_t>(), pool);
  EXPECT_EQ(r.n_scored, eval["heldout_ppl_tokens"].get<int64_t>());
  const double expected = eval["heldout_ppl"].get<double>();
  EXPECT_NEAR(r.perplexity, expected, 1e-3 * expected);
  EXPECT_LT(expected, 40.0);  // a trained model, not a uniform one (4096)
}

// Trained on WordNet glosses in ChatML: asked for a word, it answers "<word> (<part of
// speech>): ...". Greedy, so the answer is the same on every machine.
TEST(DefaultModel, AnswersADictionaryQuestionInTheTrainedFormat) {
  for (const std::string word : {"water", "house", "music"}) {
    const auto r = test::run_cli(
        {"run", "--precision", "exact", "-m", test::default_model().string(), "--system",
         "You are a dictionary. Explain the word the user asks about in one sentence.", "-p",
         "What does \"" + word + "\" mean?", "--temp", "0", "-n", "48"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind(word + " (", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("): "), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace ep
