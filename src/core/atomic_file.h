// Files that appear whole or not at all: written to "<path>.tmp", flushed to disk, then renamed
// over `path`, so a reader (or a restart after a crash) sees the old file or the complete new
// one, never a part. A failed write removes its temporary file.
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace ep {

// `write` receives the open temporary file and a function that writes bytes to it (throwing
// ep::Error naming the file on a short write, e.g. a full disk).
using WriteBytes = std::function<void(const void* data, size_t n)>;
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const WriteBytes& write)>& write);
void write_atomically(const std::filesystem::path& path, std::string_view bytes);

// The whole file; throws ep::Error naming it if it cannot be read.
std::string read_whole_file(const std::filesystem::path& path);

}  // namespace ep
