// How much of a model file the page cache holds in 2 MiB folios, as an edgeprompt mapping sees it.
// Decode streams every weight once per token; a 2 MiB range held in smaller folios is mapped with
// 4 KiB entries, and the weight stream slows there (see docs/performance.md, "Page cache").
// Reads /proc/self/pagemap and /proc/kpageflags (page frame numbers and flags: root only).
//   cmake -S . -B build -G Ninja -DEP_BENCH=ON && cmake --build build --target page_folios
//   build/bench/page_folios MODEL [--map]
// Touches every page of the file (reading it into the page cache if needed), then prints the
// number of 4 KiB pages in 2 MiB folios, in smaller folios and absent; --map adds one character
// per 2 MiB of the file: H all in 2 MiB folios, h partly, . none.
#include "core/error.h"
#include "core/mapped_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

constexpr size_t kPage = 4096, kPagesPerHuge = 512;
constexpr uint64_t kPresent = uint64_t(1) << 63, kPfnMask = (uint64_t(1) << 55) - 1;
constexpr uint64_t kThpFlag = uint64_t(1) << 22;  // KPF_THP

bool read_u64(int fd, uint64_t index, uint64_t& out) {
  return pread(fd, &out, sizeof(out), off_t(index * sizeof(out))) == ssize_t(sizeof(out));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (argc == 3 && std::strcmp(argv[2], "--map") != 0) || argc > 3) {
    std::fprintf(stderr, "usage: page_folios MODEL [--map]\n");
    return 2;
  }
  try {
    const ep::MappedFile file(argv[1]);
    const uint8_t* base = file.data();
    const size_t pages = file.size() / kPage;
    unsigned checksum = 0;  // printed, so the touching reads cannot be dropped
    for (size_t i = 0; i < pages; ++i) checksum += base[i * kPage];
    const int pagemap = open("/proc/self/pagemap", O_RDONLY);
    const int flags = open("/proc/kpageflags", O_RDONLY);
    if (pagemap < 0 || flags < 0) {
      std::fprintf(stderr, "page_folios: cannot open /proc/self/pagemap or /proc/kpageflags (%s)\n",
                   std::strerror(errno));
      return 1;
    }
    size_t huge = 0, small = 0, absent = 0;
    std::string map;
    const uint64_t first = reinterpret_cast<uintptr_t>(base) / kPage;
    for (size_t h = 0; h < pages; h += kPagesPerHuge) {
      size_t in_huge = 0;
      const size_t end = std::min(pages, h + kPagesPerHuge);
      for (size_t i = h; i < end; ++i) {
        uint64_t entry = 0, f = 0;
        if (!read_u64(pagemap, first + i, entry) || !(entry & kPresent)) {
          ++absent;
          continue;
        }
        if ((entry & kPfnMask) == 0) {
          std::fprintf(stderr, "page_folios: page frame numbers are hidden (run as root)\n");
          return 1;
        }
        if (read_u64(flags, entry & kPfnMask, f) && (f & kThpFlag))
          ++in_huge;
        else
          ++small;
      }
      huge += in_huge;
      map += in_huge == end - h ? 'H' : in_huge > 0 ? 'h' : '.';
    }
    std::printf(
        "{\"pages\": %zu, \"in_2MiB_folios\": %zu, \"in_smaller_folios\": %zu, "
        "\"absent\": %zu, \"share_2MiB\": %.4f, \"checksum\": %u}\n",
        pages, huge, small, absent, pages ? double(huge) / double(pages) : 0.0, checksum);
    if (argc == 3) std::printf("%s\n", map.c_str());
    close(pagemap);
    close(flags);
    return 0;
  } catch (const ep::Error& e) {
    std::fprintf(stderr, "page_folios: %s\n", e.what());
    return 1;
  }
}
