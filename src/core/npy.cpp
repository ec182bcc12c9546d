#include "core/npy.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/mapped_file.h"

#include <cstdio>
#include <cstring>
#include <regex>
#include <string>

namespace ep {

void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape,
                   const float* data) {
  std::string dims;
  int64_t n = 1;
  for (int64_t d : shape) {
    dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    n *= d;
  }
  if (shape.size() == 1) dims += ",";  // a one-element tuple: "(3,)"
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';

  const uint16_t hlen = uint16_t(header.size());
  write_atomically(path, [&](const WriteBytes& write) {
    write("\x93NUMPY\x01\x00", 8);
    write(&hlen, 2);
    write(header.data(), header.size());
    write(data, sizeof(float) * size_t(n));
  });
}

NpyArray read_npy(const std::filesystem::path& path) {
  MappedFile file(path);
  const uint8_t* p = file.data();
  const size_t size = file.size();
  if (size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) fail("{}: not a .npy file", path.string());
  size_t hlen = 0, hstart = 0;
  if (p[6] == 1) {
    hlen = size_t(p[8]) | (size_t(p[9]) << 8);
    hstart = 10;
  } else if (p[6] == 2 || p[6] == 3) {
    if (size < 12) fail("{}: truncated .npy header", path.string());
    hlen = size_t(p[8]) | (size_t(p[9]) << 8) | (size_t(p[10]) << 16) | (size_t(p[11]) << 24);
    hstart = 12;
  } else {
    fail("{}: unsupported .npy version {}", path.string(), p[6]);
  }
  if (hstart + hlen > size) fail("{}: truncated .npy header", path.string());
  const std::string header(reinterpret_cast<const char*>(p + hstart), hlen);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr':\s*'([<|]f[48])')"))) {
    fail("{}: .npy dtype is not little-endian float32/float64", path.string());
  }
  const bool f64 = m[1].str()[2] == '8';
  if (header.find("'fortran_order': False") == std::string::npos) {
    fail("{}: Fortran-order .npy arrays are not supported", path.string());
  }
  if (!std::regex_search(header, m, std::regex(R"('shape':\s*\(([^)]*)\))"))) {
    fail("{}: .npy header has no shape", path.string());
  }
  NpyArray a;
  int64_t n = 1;
  const std::string dims = m[1].str();
  const std::regex number(R"(\d+)");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it) {
    a.shape.push_back(std::stoll(it->str()));
    n *= a.shape.back();
  }
  const size_t elem = f64 ? 8 : 4;
  const size_t data_start = hstart + hlen;
  if ((size - data_start) / elem < size_t(n)) fail("{}: truncated .npy data", path.string());
  a.data.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    if (f64) {
      std::memcpy(&a.data[size_t(i)], p + data_start + size_t(i) * 8, 8);
    } else {
      float v;
      std::memcpy(&v, p + data_start + size_t(i) * 4, 4);
      a.data[size_t(i)] = v;
    }
  }
  return a;
}

}  // namespace ep
