// Which ISA variant the CPU kernels run (see cpu_dispatch.h).
#include "cpu_dispatch.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace videobert {

Isa best_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return Isa::kAvx512;
  if (__builtin_cpu_supports("x86-64-v3")) return Isa::kAvx2;
#endif
  return Isa::kBaseline;
}

const char* isa_name(Isa isa) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(VIDEOBERT_NO_CLONES)
  switch (isa) {
    case Isa::kAvx512: return "avx512 (x86-64-v4)";
    case Isa::kAvx2: return "avx2 (x86-64-v3)";
    default: return "baseline (x86-64)";
  }
#else
  // one code generation for all variants (the compiler's flags: -march=native, or a non-x86 target):
  // only the kernels' blocking differs
  switch (isa) {
    case Isa::kAvx512: return "avx512 blocking (single-ISA build)";
    case Isa::kAvx2: return "avx2 blocking (single-ISA build)";
    default: return "baseline blocking (single-ISA build)";
  }
#endif
}

Isa selected_isa() {
  const Isa best = best_isa();
  const char* forced = std::getenv("VIDEOBERT_ISA");
  if (forced == nullptr || *forced == '\0') return best;
  const std::string name(forced);
  Isa wanted;
  if (name == "avx512") wanted = Isa::kAvx512;
  else if (name == "avx2") wanted = Isa::kAvx2;
  else if (name == "baseline") wanted = Isa::kBaseline;
  else throw std::invalid_argument("VIDEOBERT_ISA=" + name + ": expected avx512, avx2 or baseline (or unset: the best this CPU supports)");
  if (static_cast<int>(wanted) > static_cast<int>(best))
    throw std::invalid_argument("VIDEOBERT_ISA=" + name + ": this CPU lacks its instructions; it supports " +
                                isa_name(best) + " and below");
  return wanted;
}

}  // namespace videobert
