// Runtime CPU dispatch for the CPU kernels: a function marked VB_CLONES is compiled for several
// x86-64 ISA levels and the loader picks the best one for the CPU (so one portable wheel runs fast
// on any x86-64 machine); VIDEOBERT_NATIVE builds compile everything for the build machine instead.
// Helpers of cloned functions are marked VB_INLINE: inlined into each clone, they get its ISA
// (a helper left out of line is compiled for the baseline only and runs several times slower).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(VIDEOBERT_NO_CLONES)
#define VB_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VB_CLONES
#endif
#define VB_INLINE __attribute__((always_inline)) inline
