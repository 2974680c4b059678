/* lrn-ablate's CPU kernels, loaded by lrn_ablate/kernels/__init__.py with ctypes. Each header holds one
   layer's loops for a floating type T, with NAME(x) naming x_f32 or x_f64; it is included once per type.
   No fused multiply-adds (-ffp-contract=off): every clone below gives bit-identical results, whatever the
   vector width of the machine. */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* One build runs on any x86-64 and uses AVX2 where the CPU has it (resolved at load time). An AVX-512
   clone was slower on the development machine's AMD EPYC (3.6x in the max pooling), so there is none. */
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Built with -fopenmp where the compiler has it. Loaded into a torch process, the library then shares
   torch's OpenMP runtime (libgomp.so.1 is already loaded) and its threads, which are warm. */
#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
#endif

/* Below this many values one thread is faster than waking others: torch's at::internal::GRAIN_SIZE. */
#define GRAIN 32768

static inline int thread_count(int64_t values, int threads) { return values >= GRAIN && threads > 1 ? threads : 1; }

/* The first item of share `part` of `count` items split into `parts` near-equal shares. */
static inline int64_t share(int64_t count, int part, int parts) { return count * part / parts; }

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
