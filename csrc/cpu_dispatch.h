// Runtime CPU dispatch for the CPU kernels. A kernel is written once as an always-inline template
// on `Isa` (NAME_impl<I>); VB_ISA_VARIANTS compiles it into one function per x86-64 ISA level, each
// with that level's target attribute, and VB_ISA_CALL calls the one `selected_isa()` names. So one
// portable wheel runs the AVX-512 code on AVX-512 machines and the AVX2 code on AVX2 ones, a kernel
// can pick its blocking per ISA (16 ymm registers are not 32 zmm ones), and VIDEOBERT_ISA forces any
// variant the CPU supports, for tests and benchmarks. VIDEOBERT_NATIVE builds compile every variant
// for the build machine instead. Helpers of kernels are marked VB_INLINE: inlined into each
// variant, they get its ISA (a helper left out of line is compiled for the baseline only).
#pragma once

namespace videobert {

enum class Isa { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

// The variant the CPU kernels run: VIDEOBERT_ISA=avx512|avx2|baseline forces one (std::invalid_argument,
// a ValueError in Python, when the name is unknown or this CPU lacks the instructions); unset or empty,
// the best this CPU supports. Read on every call of a kernel's entry point, so a test may change it.
Isa selected_isa();
Isa best_isa();                 // the best variant this CPU supports
const char* isa_name(Isa isa);  // "avx512 (x86-64-v4)", "avx2 (x86-64-v3)", "baseline (x86-64)"

}  // namespace videobert

#if defined(__x86_64__) && defined(__GNUC__) && !defined(VIDEOBERT_NO_CLONES)
#define VB_TARGET_AVX512 __attribute__((target("arch=x86-64-v4")))
#define VB_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#else
#define VB_TARGET_AVX512
#define VB_TARGET_AVX2
#endif
#define VB_INLINE __attribute__((always_inline)) inline

// Defines NAME_avx512, NAME_avx2 and NAME_baseline (PARAMS): each runs NAME_impl<that Isa> ARGS.
#define VB_ISA_VARIANTS(NAME, PARAMS, ARGS)                                                \
  VB_TARGET_AVX512 void NAME##_avx512 PARAMS { NAME##_impl<::videobert::Isa::kAvx512> ARGS; } \
  VB_TARGET_AVX2 void NAME##_avx2 PARAMS { NAME##_impl<::videobert::Isa::kAvx2> ARGS; }       \
  void NAME##_baseline PARAMS { NAME##_impl<::videobert::Isa::kBaseline> ARGS; }

// Calls the variant of NAME for `isa` (an Isa value) with ARGS.
#define VB_ISA_CALL(isa, NAME, ARGS)                                          \
  ((isa) == ::videobert::Isa::kAvx512 ? NAME##_avx512 ARGS                    \
   : (isa) == ::videobert::Isa::kAvx2 ? NAME##_avx2 ARGS : NAME##_baseline ARGS)
