// The CUDA backend is a plugin opened from beside the binary on first use: a binary without it,
// or with a broken one, answers --device cuda with one clear error and a non-zero exit, and a
// binary with it finds and loads it.
#include "test_util.h"

#include "backend/cuda/cuda_engine.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace ep {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kCudaBench = {"bench", "--device", "cuda", "--shape", "qwen2.5-0.5b",
                                             "-p",    "8",        "-n",   "2"};

fs::path copy_binary(const test::ScratchDir& dir) {
  const fs::path bin = dir / "edgeprompt";
  fs::copy_file(test::edgeprompt_binary(), bin);
  return bin;
}

TEST(CudaLoader, BinaryWithoutThePluginSaysSo) {
  test::ScratchDir dir;
  const auto r = test::run_program(copy_binary(dir), kCudaBench);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("this build has no CUDA backend"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find((dir / "libedgeprompt_cuda.so").string()), std::string::npos) << r.err;
}

TEST(CudaLoader, BrokenPluginIsOneClearError) {
  test::ScratchDir dir;
  const fs::path bin = copy_binary(dir);
  std::ofstream(dir / "libedgeprompt_cuda.so") << "not a shared object";
  const auto r = test::run_program(bin, kCudaBench);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("does not load"), std::string::npos) << r.err;
}

// The plugin beside the built binary is found: without a device the error names the device, not
// a missing backend (with a device, the CUDA tests run the engine through this same loader).
TEST(CudaLoader, PluginBesideTheBinaryIsFound) {
  if (!fs::exists(test::edgeprompt_binary().parent_path() / "libedgeprompt_cuda.so"))
    GTEST_SKIP() << "this build has no CUDA backend";
  if (cuda::device_available()) GTEST_SKIP() << "a CUDA device is present";
  const auto r = test::run_cli(kCudaBench);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no usable CUDA device"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ep
