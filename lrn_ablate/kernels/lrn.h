/* Cross-channel LRN for one floating type; kernels.c includes this once per type.

   forward:  scale = k + coef * sum_{j = c - before}^{c + after} x_j^2,  factor = scale^-beta,  y = x * factor,
             quotient = factor / scale (saved for the backward with x and factor)
   backward: dx = g * factor - 2 * beta * coef * x * sum_{j = c - after}^{c + before} g_j * x_j * quotient_j

   Where scale = 0 (k = 0 and an all-zero window) factor, quotient, y and dx are 0, as in the torch path.
   Tensors are (N, C, P) with P the flattened spatial dims, either channel-major (NCHW: channel stride P,
   pixel stride 1) or channels_last (NHWC: channel stride 1, pixel stride C). Every window sum runs in
   channel order. */

/* factor = scale^-beta and quotient = factor / scale with scale = k + coef * window sum of x^2, y = x * factor,
   for one batch item. The backward needs x * factor / scale; saving the quotient spares it a division. */
static inline void NAME(forward_item)(const T *x, T *y, T *factor, T *quotient, int64_t channels, int64_t pixels,
                                      int64_t cs, int64_t ps, int64_t before, int64_t after, T coef, T k,
                                      T beta) {
    for (int64_t c = 0; c < channels; c++) {
        T *f = factor + c * cs, *q = quotient + c * cs, *out = y + c * cs;
        const T *xc = x + c * cs;
        /* q holds the window sum until the last loop; the window always holds channel c, so it is not empty */
        int64_t first = MAX(0, c - before), last = MIN(channels - 1, c + after);
        const T *xf = x + first * cs;
        for (int64_t p = 0; p < pixels; p++) q[p * ps] = xf[p * ps] * xf[p * ps];
        for (int64_t j = first + 1; j <= last; j++) {
            const T *xj = x + j * cs;
            for (int64_t p = 0; p < pixels; p++) q[p * ps] += xj[p * ps] * xj[p * ps];
        }
        if (beta == (T)0.75 || beta == (T)0.5) { /* from root = s^-1/2: vectorized square roots, no pow call */
            int three_quarters = beta == (T)0.75; /* s^-3/4 = s^-1/2 * s^-1/4 */
            for (int64_t p = 0; p < pixels; p++) {
                T sc = k + coef * q[p * ps];
                T root = (T)1 / SQRT(sc);
                T fc = sc == 0 ? (T)0 : three_quarters ? root * SQRT(root) : root;
                f[p * ps] = fc;
                q[p * ps] = sc == 0 ? (T)0 : fc * (root * root); /* 1 / s = root^2: no division */
                out[p * ps] = xc[p * ps] * fc;
            }
        } else {
            for (int64_t p = 0; p < pixels; p++) {
                T sc = k + coef * q[p * ps];
                T fc = (sc == 0 && beta > 0) ? (T)0 : POW(sc, -beta);
                f[p * ps] = fc;
                q[p * ps] = sc == 0 ? (T)0 : fc / sc;
                out[p * ps] = xc[p * ps] * fc;
            }
        }
    }
}

/* dx = g * factor - 2 * beta * coef * x * transposed-window sum of g * x * quotient, for one batch item. */
static inline void NAME(backward_item)(const T *g, const T *x, const T *factor, const T *quotient, T *dx,
                                       T *ratio, int64_t channels, int64_t pixels, int64_t cs, int64_t ps,
                                       int64_t before, int64_t after, T coef, T beta) {
    for (int64_t i = 0; i < channels * pixels; i++) /* the layout does not matter to an elementwise pass */
        ratio[i] = g[i] * (x[i] * quotient[i]);
    T weight = (T)-2 * beta * coef;
    for (int64_t c = 0; c < channels; c++) {
        T *d = dx + c * cs;
        /* channel c is in the window of channel j exactly when j is in [c - after, c + before] */
        int64_t first = MAX(0, c - after), last = MIN(channels - 1, c + before);
        const T *rf = ratio + first * cs;
        for (int64_t p = 0; p < pixels; p++) d[p * ps] = rf[p * ps];
        for (int64_t j = first + 1; j <= last; j++) {
            const T *rj = ratio + j * cs;
            for (int64_t p = 0; p < pixels; p++) d[p * ps] += rj[p * ps];
        }
        const T *gc = g + c * cs, *xc = x + c * cs, *fc = factor + c * cs;
        for (int64_t p = 0; p < pixels; p++) d[p * ps] = gc[p * ps] * fc[p * ps] + weight * xc[p * ps] * d[p * ps];
    }
}

/* Items [start, stop) of the batch, on one thread. Each layout gets its own call with constant strides,
   so that the inlined loops are compiled (and vectorized) for it. */
CLONES void NAME(lrn_forward_items)(const T *x, T *y, T *factor, T *quotient, int64_t start, int64_t stop,
                                    int64_t channels, int64_t pixels, int channels_last, int64_t before,
                                    int64_t after, T coef, T k, T beta) {
    for (int64_t n = start; n < stop; n++) {
        size_t at = (size_t)(n * channels * pixels);
        if (channels_last)
            NAME(forward_item)(x + at, y + at, factor + at, quotient + at, channels, pixels, 1, channels, before,
                               after, coef, k, beta);
        else
            NAME(forward_item)(x + at, y + at, factor + at, quotient + at, channels, pixels, pixels, 1, before,
                               after, coef, k, beta);
    }
}

/* Returns 1 where the scratch space of one item could not be allocated. */
CLONES int NAME(lrn_backward_items)(const T *g, const T *x, const T *factor, const T *quotient, T *dx, int64_t start,
                                    int64_t stop, int64_t channels, int64_t pixels, int channels_last,
                                    int64_t before, int64_t after, T coef, T beta) {
    T *ratio = malloc((size_t)(channels * pixels) * sizeof(T)); /* g * x * quotient of one item */
    if (ratio == NULL) return 1;
    for (int64_t n = start; n < stop; n++) {
        size_t at = (size_t)(n * channels * pixels);
        if (channels_last)
            NAME(backward_item)(g + at, x + at, factor + at, quotient + at, dx + at, ratio, channels, pixels, 1,
                                channels, before, after, coef, beta);
        else
            NAME(backward_item)(g + at, x + at, factor + at, quotient + at, dx + at, ratio, channels, pixels,
                                pixels, 1, before, after, coef, beta);
    }
    free(ratio);
    return 0;
}

/* The entry points: the batch split over `threads` threads (one below GRAIN values); they return 0, or 1
   where scratch space could not be allocated (dx is then incomplete). */
int NAME(lrn_forward)(const T *x, T *y, T *factor, T *quotient, int64_t batch, int64_t channels, int64_t pixels,
                      int channels_last, int64_t before, int64_t after, double coef, double k, double beta,
                      int threads) {
#pragma omp parallel num_threads(thread_count(batch * channels * pixels, threads))
    {
        int part = omp_get_thread_num(), parts = omp_get_num_threads();
        NAME(lrn_forward_items)(x, y, factor, quotient, share(batch, part, parts), share(batch, part + 1, parts),
                                channels, pixels, channels_last, before, after, (T)coef, (T)k, (T)beta);
    }
    return 0;
}

int NAME(lrn_backward)(const T *g, const T *x, const T *factor, const T *quotient, T *dx, int64_t batch,
                       int64_t channels, int64_t pixels, int channels_last, int64_t before, int64_t after,
                       double coef, double beta, int threads) {
    int failed = 0;
#pragma omp parallel num_threads(thread_count(batch * channels * pixels, threads))
    {
        int part = omp_get_thread_num(), parts = omp_get_num_threads();
        if (NAME(lrn_backward_items)(g, x, factor, quotient, dx, share(batch, part, parts),
                                     share(batch, part + 1, parts), channels, pixels, channels_last, before, after,
                                     (T)coef, (T)beta)) {
#pragma omp atomic write
            failed = 1;
        }
    }
    return failed;
}
