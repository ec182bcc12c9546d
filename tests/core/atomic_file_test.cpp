// Files that appear whole or not at all (core/atomic_file.h): creating and replacing, reading
// binary bytes back, and what a failed write leaves (the old file, no temporary).
#include "core/atomic_file.h"

#include "core/error.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace ep {
namespace {

namespace fs = std::filesystem;

// Every byte value, NUL included, several times over.
std::string all_bytes(size_t repeat) {
  std::string s;
  for (size_t r = 0; r < repeat; ++r) {
    for (int b = 0; b < 256; ++b) s += char(b);
  }
  return s;
}

size_t entries_in(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFile, CreatesAndReplacesWithExactlyTheBytes) {
  test::ScratchDir dir;
  const fs::path path = dir / "prompt.epkv";
  const std::string first = all_bytes(3) + std::string("\0\0tail", 6);
  write_atomically(path, first);
  EXPECT_EQ(fs::file_size(path), first.size());
  EXPECT_EQ(test::read_file(path), first);
  EXPECT_EQ(read_whole_file(path), first);

  // Replaced by a shorter file: nothing of the old one is left.
  write_atomically(path, std::string_view("short"));
  EXPECT_EQ(read_whole_file(path), "short");
  // And by an empty one.
  write_atomically(path, std::string_view());
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(fs::file_size(path), 0u);
  EXPECT_EQ(read_whole_file(path), "");
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicFile, WriteCallbackWritesInPieces) {
  test::ScratchDir dir;
  const fs::path path = dir / "pieces.bin";
  const std::string big = all_bytes(4096);  // 1 MiB
  write_atomically(path, [&](const WriteBytes& write) {
    write("head", 4);
    write(nullptr, 0);  // an empty piece is allowed
    for (size_t at = 0; at < big.size(); at += 65536) write(big.data() + at, 65536);
  });
  EXPECT_EQ(read_whole_file(path), "head" + big);
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

TEST(AtomicFile, AThrowingWriteLeavesTheOldFileAndNoTemporary) {
  test::ScratchDir dir;
  const fs::path path = dir / "meta.json";
  write_atomically(path, std::string_view("{\"version\": 1}"));
  EXPECT_THROW(write_atomically(path,
                                [](const WriteBytes& write) {
                                  write("{\"version\": 2", 13);  // half of the new file...
                                  throw std::runtime_error("disk on fire");
                                }),
               std::runtime_error);
  EXPECT_EQ(read_whole_file(path), "{\"version\": 1}");
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  EXPECT_EQ(entries_in(dir.path()), 1u);

  // A throwing write of a file that did not exist leaves nothing at all.
  const fs::path fresh = dir / "fresh.json";
  EXPECT_THROW(write_atomically(fresh, [](const WriteBytes&) { fail("no bytes for you"); }), Error);
  EXPECT_FALSE(fs::exists(fresh));
  EXPECT_FALSE(fs::exists(fresh.string() + ".tmp"));
  EXPECT_EQ(entries_in(dir.path()), 1u);
}

TEST(AtomicFile, WritingIntoAMissingDirectoryThrowsNamingThePath) {
  test::ScratchDir dir;
  const fs::path path = dir / "no" / "such" / "dir" / "file.epkv";
  try {
    write_atomically(path, std::string_view("bytes"));
    FAIL() << "wrote into a directory that does not exist";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "no"));
}

TEST(AtomicFile, ReadingAMissingFileThrowsNamingIt) {
  test::ScratchDir dir;
  const fs::path path = dir / "missing.json";
  try {
    read_whole_file(path);
    FAIL() << "read a file that does not exist";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST(AtomicFile, ReplacingADirectoryFailsAndRemovesTheTemporary) {
  test::ScratchDir dir;
  const fs::path path = dir / "occupied";
  fs::create_directories(path / "child");  // a non-empty directory cannot be renamed over
  try {
    write_atomically(path, std::string_view("bytes"));
    FAIL() << "replaced a directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_directory(path / "child"));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
}

}  // namespace
}  // namespace ep
