#include "kernels/cpu/cpu_features.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace ep::kernels {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    // F16C has no __builtin_cpu_supports name in every GCC; every AVX2 CPU so far has it, but
    // check CPUID leaf 1, ECX bit 29 to be sure.
    unsigned eax = 1, ebx = 0, ecx = 0, edx = 0;
    __asm__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
    c.f16c = (ecx >> 29) & 1u;
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512dq = __builtin_cpu_supports("avx512dq");
    c.avx512vnni = __builtin_cpu_supports("avx512vnni");
    c.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#endif
    return c;
  }();
  return f;
}

Isa detected_isa() {
  const CpuFeatures& f = cpu_features();
  if (!(f.avx2 && f.fma && f.f16c)) return Isa::Scalar;
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq) return Isa::Avx512;
  return Isa::Avx2;
}

Isa clamp_isa(Isa want) {
  return std::min(want, detected_isa());
}

Isa active_isa() {
  static const Isa isa = [] {
    Isa want = Isa::Avx512;
    if (const char* e = std::getenv("EP_ISA")) {
      const std::string s = e;
      if (s == "scalar")
        want = Isa::Scalar;
      else if (s == "avx2")
        want = Isa::Avx2;
    }
    return clamp_isa(want);
  }();
  return isa;
}

std::string_view cpu_isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "?";
}

}  // namespace ep::kernels
