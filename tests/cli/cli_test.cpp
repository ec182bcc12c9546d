// The CLI contract (info, convert, synth, logits) and its answers to bad input: one clear error
// line, a non-zero exit, never a crash.
#include "core/npy.h"
#include "model/gguf.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

namespace ep {
namespace {

const std::filesystem::path kModels = test::fixtures_dir() / "models";

// Runs the CLI expecting failure; returns stderr after checking it is one "error: ..." line.
std::string expect_error(const std::vector<std::string>& args) {
  const auto r = test::run_cli(args);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_LT(r.exit_code, 128) << "killed by a signal: " << r.err;  // not a crash
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  return r.err;
}

void copy_dir(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::create_directories(to);
  for (const auto& e : std::filesystem::directory_iterator(from)) {
    if (e.is_regular_file()) std::filesystem::copy_file(e.path(), to / e.path().filename());
  }
}

nlohmann::json info_json(const std::string& model) {
  const auto r = test::run_cli({"info", "--model", model, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST(Cli, InfoDescribesHuggingFaceAndGgufModels) {
  const auto hf = info_json((kModels / "llama3-rope").string());
  EXPECT_EQ(hf["format"], "hf");
  EXPECT_EQ(hf["architecture"], "llama");
  EXPECT_EQ(hf["head_dim"], 32);
  EXPECT_EQ(hf["n_head_kv"], 1);
  EXPECT_EQ(hf["tied_embeddings"], true);
  EXPECT_EQ(hf["n_params"], 410016);  // as counted by transformers (manifest.json)

  test::ScratchDir dir;
  const auto gguf = (dir / "m.gguf").string();
  const auto c = test::run_cli(
      {"convert", (kModels / "qwen2-bias").string(), "--dtype", "q8_0", "--out", gguf});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const auto g = info_json(gguf);
  EXPECT_EQ(g["format"], "gguf");
  EXPECT_EQ(g["architecture"], "qwen2");
  EXPECT_EQ(g["qkv_bias"], true);
  EXPECT_EQ(g["n_params"], 193856);
  EXPECT_GT(g["tensor_types"]["q8_0"].get<int>(), 0);

  const auto text = test::run_cli({"info", "--model", gguf});
  EXPECT_NE(text.out.find("fingerprint:    xxh3-128:"), std::string::npos);
}

TEST(Cli, FingerprintIsStableAndTellsModelsApart) {
  test::ScratchDir dir;
  const auto fp = [](const std::string& m) {
    return info_json(m)["fingerprint"].get<std::string>();
  };
  const std::string hf = (kModels / "mistral-mha").string();
  EXPECT_EQ(fp(hf), fp(hf));
  for (const char* t : {"f16", "q8_0"}) {
    ASSERT_EQ(test::run_cli({"convert", hf, "--dtype", t, "--out", (dir / t).string()}).exit_code,
              0);
  }
  EXPECT_EQ(fp((dir / "f16").string()), fp((dir / "f16").string()));
  EXPECT_NE(fp((dir / "f16").string()), fp((dir / "q8_0").string()));
  EXPECT_NE(fp(hf), fp((kModels / "llama-gqa").string()));
  // Converting twice gives the same bytes, hence the same fingerprint.
  ASSERT_EQ(
      test::run_cli({"convert", hf, "--dtype", "f16", "--out", (dir / "again").string()}).exit_code,
      0);
  EXPECT_EQ(test::read_file(dir / "f16"), test::read_file(dir / "again"));
  // One changed weight byte changes the fingerprint.
  std::string bytes = test::read_file(dir / "f16");
  bytes[bytes.size() - 100] ^= 1;
  test::write_file(dir / "tampered", bytes);
  EXPECT_NE(fp((dir / "f16").string()), fp((dir / "tampered").string()));
}

TEST(Cli, SynthWritesARealModelShape) {
  test::ScratchDir dir;
  const auto path = (dir / "tiny.gguf").string();
  const auto r =
      test::run_cli({"synth", "--shape", "tinyllama-1.1b", "--dtype", "q4_0", "--out", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = info_json(path);
  EXPECT_EQ(j["n_layer"], 22);
  EXPECT_EQ(j["n_embd"], 2048);
  EXPECT_EQ(j["n_head_kv"], 4);
  EXPECT_EQ(j["n_ff"], 5632);
  EXPECT_NEAR(double(j["n_params"].get<int64_t>()), 1.1e9, 0.01e9);
  // A complete file for other readers: a vocabulary of the right size.
  const auto f = GgufFile::open(path);
  EXPECT_EQ(f->get("tokenizer.ggml.tokens").as_array().size(), 32000u);
  EXPECT_EQ(f->get("general.file_type").as_u64(), 2u);
  const auto l = test::run_cli(
      {"logits", "--model", path, "--tokens", "1,500", "--out", (dir / "l.npy").string()});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  const NpyArray a = read_npy(dir / "l.npy");
  ASSERT_EQ(a.shape, (std::vector<int64_t>{2, 32000}));
  for (double v : a.data) ASSERT_TRUE(std::isfinite(v));
}

TEST(Cli, BadInputGetsOneClearError) {
  test::ScratchDir dir;
  const std::string hf = (kModels / "llama-gqa").string();
  EXPECT_NE(expect_error({"info", "--model", "/no/such/model.gguf"}).find("/no/such/model.gguf"),
            std::string::npos);
  EXPECT_NE(expect_error(
                {"logits", "--model", hf, "--tokens", "1,1000", "--out", (dir / "x.npy").string()})
                .find("token id 1000 out of range"),
            std::string::npos);
  EXPECT_NE(
      expect_error({"logits", "--model", hf, "--tokens", "1,x", "--out", (dir / "x.npy").string()})
          .find("--tokens"),
      std::string::npos);
  EXPECT_NE(expect_error({"convert", hf, "--dtype", "q5_k", "--out", (dir / "x.gguf").string()})
                .find("q5_k"),
            std::string::npos);
  EXPECT_NE(
      expect_error({"synth", "--shape", "gpt-5", "--out", (dir / "x.gguf").string()}).find("gpt-5"),
      std::string::npos);

  // Truncated GGUF: every cut point is refused with the file named.
  const auto good = dir / "good.gguf";
  ASSERT_EQ(test::run_cli({"convert", hf, "--dtype", "q8_0", "--out", good.string()}).exit_code, 0);
  const std::string bytes = test::read_file(good);
  for (size_t cut : {size_t(3), size_t(30), bytes.size() / 3, bytes.size() - 1}) {
    test::write_file(dir / "cut.gguf", bytes.substr(0, cut));
    EXPECT_NE(expect_error({"info", "--model", (dir / "cut.gguf").string()}).find("cut.gguf"),
              std::string::npos);
  }

  // Unknown architecture and a shape that disagrees with config.json.
  copy_dir(kModels / "llama-gqa", dir / "gpt2");
  {
    auto cfg = nlohmann::json::parse(test::read_file(dir / "gpt2" / "config.json"));
    cfg["model_type"] = "gpt2";
    test::write_file(dir / "gpt2" / "config.json", cfg.dump());
  }
  EXPECT_NE(expect_error({"info", "--model", (dir / "gpt2").string()}).find("gpt2"),
            std::string::npos);
  copy_dir(kModels / "llama-gqa", dir / "wide");
  {
    auto cfg = nlohmann::json::parse(test::read_file(dir / "wide" / "config.json"));
    cfg["intermediate_size"] = 200;
    test::write_file(dir / "wide" / "config.json", cfg.dump());
  }
  EXPECT_NE(expect_error({"info", "--model", (dir / "wide").string()}).find("ffn_gate"),
            std::string::npos);

  // A GGUF missing one tensor.
  {
    const auto src = GgufFile::open(good);
    GgufWriter w;
    for (const auto& [k, v] : src->metadata()) w.set(k, v);
    for (const auto& t : src->tensors()) {
      if (t.name == "blk.1.ffn_up.weight") continue;
      const GgufTensorInfo* info = &t;
      w.add_tensor(t.name, t.type, t.shape, [info](std::span<uint8_t> out) {
        std::copy(info->data, info->data + info->n_bytes, out.begin());
      });
    }
    w.write(dir / "missing.gguf");
  }
  EXPECT_NE(expect_error({"info", "--model", (dir / "missing.gguf").string()})
                .find("missing tensor 'blk.1.ffn_up.weight'"),
            std::string::npos);
}

}  // namespace
}  // namespace ep
