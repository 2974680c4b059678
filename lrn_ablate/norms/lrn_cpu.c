/* Cross-channel LRN on the CPU in one pass each way, loaded by lrn_ablate/norms/cpu_kernel.py with ctypes.

   forward:  scale = k + coef * sum_{j = c - before}^{c + after} x_j^2,  factor = scale^-beta,  y = x * factor,
             quotient = factor / scale (saved for the backward with x and factor)
   backward: dx = g * factor - 2 * beta * coef * x * sum_{j = c - after}^{c + before} g_j * x_j * quotient_j

   Where scale = 0 (k = 0 and an all-zero window) factor, quotient, y and dx are 0, as in the torch path.
   Tensors are (N, C, P) with P the flattened spatial dims, either channel-major (NCHW: channel stride P,
   pixel stride 1) or channels_last (NHWC: channel stride 1, pixel stride C). Every sum runs over the
   window in channel order, with no fused multiply-adds (-ffp-contract=off), so every clone below gives
   bit-identical results whatever the vector width. The loops are in lrn_cpu.h, once per floating type. */

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* One build runs on any x86-64 and still uses the widest vectors the CPU has (resolved at load time). */
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define T float
#define NAME(name) name##_f32
#define SQRT sqrtf
#define POW powf
#include "lrn_cpu.h"
#undef T
#undef NAME
#undef SQRT
#undef POW

#define T double
#define NAME(name) name##_f64
#define SQRT sqrt
#define POW pow
#include "lrn_cpu.h"
