// Loading the files llama.cpp's llama-quantize writes (tests/fixtures/kquant): every one loads,
// and corrupt ones (a non-finite block scale, a truncated tensor, rows that are not whole
// super-blocks) fail with one clear ep::Error, never an out-of-bounds read.
#include "core/error.h"
#include "core/quant_blocks.h"
#include "model/gguf.h"
#include "model/model.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>

namespace ep {
namespace {

const std::filesystem::path kDir = test::fixtures_dir() / "kquant";

std::vector<std::filesystem::path> quantised_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(kDir)) {
    if (e.path().extension() == ".gguf" && e.path().stem() != "tiny-f16") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string load_error(const std::filesystem::path& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(ParserGgufKQuant, EveryQuantisedFileLoads) {
  const auto files = quantised_files();
  ASSERT_GE(files.size(), 8u);
  for (const auto& f : files) {
    const auto m = load_model(f);
    EXPECT_EQ(m->hp.n_embd, 256) << f;
    EXPECT_NE(m->output.type, DType::F16) << f;  // every matrix was quantised
  }
}

// The scale d of block 1 of every quantised tensor in turn set to +inf (then NaN): the loader
// names the tensor.
TEST(ParserGgufKQuant, NonFiniteScaleIsAClearError) {
  test::ScratchDir dir;
  for (const auto& f : quantised_files()) {
    const std::string bytes = test::read_file(f);
    const auto gguf =
        GgufFile::parse({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, f.string());
    for (const GgufTensorInfo& t : gguf->tensors()) {
      const int64_t per_block = dtype_block_elems(t.type);
      if (per_block == 1) continue;
      size_t d_at = 0;  // where d sits in a block
      if (t.type == DType::Q2_K) d_at = offsetof(BlockQ2_K, d);
      if (t.type == DType::Q3_K) d_at = offsetof(BlockQ3_K, d);
      if (t.type == DType::Q6_K) d_at = offsetof(BlockQ6_K, d);
      const size_t at = size_t(t.data - reinterpret_cast<const uint8_t*>(bytes.data())) +
                        size_t(dtype_block_bytes(t.type)) + d_at;
      for (const uint16_t bad : {uint16_t(0x7c00), uint16_t(0xfe00)}) {
        std::string corrupt = bytes;
        std::memcpy(&corrupt[at], &bad, sizeof bad);
        const auto path = dir / "corrupt.gguf";
        test::write_file(path, corrupt);
        const std::string m = load_error(path);
        EXPECT_NE(m.find("'" + t.name + "'"), std::string::npos) << f.filename() << ": " << m;
        EXPECT_NE(m.find("block 1 of"), std::string::npos) << m;
        EXPECT_NE(m.find("non-finite scale"), std::string::npos) << m;
      }
    }
  }
}

TEST(ParserGgufKQuant, TruncationIsAClearError) {
  const std::string bytes = test::read_file(kDir / "tiny-Q4_K_M.gguf");
  // Cut points spread over the whole file (header, tensor table, each tensor's data).
  for (size_t n = 0; n < bytes.size(); n += 997) {
    try {
      GgufFile::parse({reinterpret_cast<const uint8_t*>(bytes.data()), n}, "cut.gguf");
      ADD_FAILURE() << "no error at " << n;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.gguf"), std::string::npos) << e.what();
    }
  }
  try {
    GgufFile::parse({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size() - 1}, "cut.gguf");
    ADD_FAILURE() << "no error one byte short";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated: tensor"), std::string::npos) << e.what();
  }
}

TEST(ParserGgufKQuant, RowsMustBeWholeBlocks) {
  for (const auto& [id, name, row, block] :
       {std::tuple{12u, "Q4_K", 128u, 256}, std::tuple{14u, "Q6_K", 288u, 256},
        std::tuple{3u, "Q4_1", 48u, 32}}) {
    std::string g;
    const auto put = [&](auto v) { g.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(uint32_t(0x46554747)), put(uint32_t(3)), put(uint64_t(1)), put(uint64_t(0));
    put(uint64_t(1)), g += "w", put(uint32_t(1)), put(uint64_t(row)), put(uint32_t(id));
    put(uint64_t(0));
    g.resize(4096, '\0');
    try {
      GgufFile::parse({reinterpret_cast<const uint8_t*>(g.data()), g.size()}, "rows.gguf");
      ADD_FAILURE() << name;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(fmt::format("row length {} is not a multiple of the {} block size {}", row,
                                   name, block)),
                std::string::npos)
          << m;
    }
  }
}

}  // namespace
}  // namespace ep
