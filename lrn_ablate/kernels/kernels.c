/* lrn-ablate's CPU kernels, loaded by lrn_ablate/kernels/__init__.py with ctypes. Each header holds one
   layer's loops for a floating type T, with NAME(x) naming x_f32 or x_f64; it is included once per type.
   No fused multiply-adds (-ffp-contract=off): every clone below gives bit-identical results, whatever the
   vector width of the machine. */

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* One build runs on any x86-64 and still uses the widest vectors the CPU has (resolved at load time). */
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define T float
#define NAME(name) name##_f32
#define SQRT sqrtf
#define POW powf
#include "lrn.h"
#include "maxpool.h"
#undef T
#undef NAME
#undef SQRT
#undef POW

#define T double
#define NAME(name) name##_f64
#define SQRT sqrt
#define POW pow
#include "lrn.h"
#include "maxpool.h"
