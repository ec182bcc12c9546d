#include "core/atomic_file.h"

#include "core/error.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ep {

void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const WriteBytes& write)>& write) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) fail("{}: cannot create: {}", tmp.string(), std::strerror(errno));
  const WriteBytes write_bytes = [&](const void* data, size_t n) {
    if (n != 0 && std::fwrite(data, 1, n, f) != n) {
      fail("{}: write failed: {}", tmp.string(), std::strerror(errno));
    }
  };
  try {
    write(write_bytes);
    if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0) {
      fail("{}: write failed: {}", tmp.string(), std::strerror(errno));
    }
  } catch (...) {
    std::fclose(f);
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  if (std::fclose(f) != 0) {
    const int err = errno;
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    fail("{}: write failed: {}", tmp.string(), std::strerror(err));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(tmp, ec);
    fail("{}: cannot replace: {}", path.string(), why);
  }
}

void write_atomically(const std::filesystem::path& path, std::string_view bytes) {
  write_atomically(path, [&](const WriteBytes& write) { write(bytes.data(), bytes.size()); });
}

std::string read_whole_file(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path)) fail("{}: is a directory", path.string());
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("{}: cannot read", path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail("{}: read failed", path.string());
  return ss.str();
}

}  // namespace ep
