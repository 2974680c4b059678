/* 2x2 max pooling with stride 2 (floor mode) for one floating type; kernels.c includes this once per type.
   Ties and NaNs pick the window element torch's CPU max_pool2d picks: the first maximum in row-major
   order, or the last NaN. `which` keeps that element's place in the window (0..3) for the backward, as
   int32: stores through a char pointer may alias anything and keep the compiler from vectorizing. The
   loops select instead of branching: on random data a branch per comparison mispredicts often. */

/* Planes [start, stop) of the (N * C) planes, on one thread. */
CLONES void NAME(maxpool2_forward_planes)(const T *restrict x, T *restrict y, int32_t *restrict which, int64_t start,
                                         int64_t stop, int64_t height, int64_t width) {
    int64_t out_h = height / 2, out_w = width / 2;
    for (int64_t plane = start; plane < stop; plane++) {
        for (int64_t i = 0; i < out_h; i++) {
            const T *top = x + (plane * height + 2 * i) * width, *bottom = top + width;
            T *out = y + (plane * out_h + i) * out_w;
            int32_t *place = which + (plane * out_h + i) * out_w;
            for (int64_t j = 0; j < out_w; j++) {
                T best = top[2 * j], candidate = top[2 * j + 1];
                int32_t at = 0;
                int take = candidate > best || candidate != candidate; /* x != x: NaN */
                best = take ? candidate : best;
                at = take ? 1 : at;
                candidate = bottom[2 * j];
                take = candidate > best || candidate != candidate;
                best = take ? candidate : best;
                at = take ? 2 : at;
                candidate = bottom[2 * j + 1];
                take = candidate > best || candidate != candidate;
                out[j] = take ? candidate : best;
                place[j] = take ? 3 : at;
            }
        }
    }
}

/* Each input row is written on its own: writing the top and bottom rows of a window in one loop ran ~10x
   slower here (two interleaved store streams). */
CLONES void NAME(maxpool2_backward_planes)(const T *restrict grad, const int32_t *restrict which,
                                          T *restrict grad_x, int64_t start, int64_t stop, int64_t height,
                                          int64_t width) {
    int64_t out_h = height / 2, out_w = width / 2;
    for (int64_t plane = start; plane < stop; plane++) {
        for (int64_t i = 0; i < out_h; i++) {
            const T *g = grad + (plane * out_h + i) * out_w;
            const int32_t *place = which + (plane * out_h + i) * out_w;
            for (int32_t half = 0; half < 2; half++) {
                T *row = grad_x + (plane * height + 2 * i + half) * width;
                for (int64_t j = 0; j < out_w; j++) {
                    T value = g[j]; /* loaded unconditionally, so that the selects vectorize */
                    int32_t at = place[j] - 2 * half;
                    row[2 * j] = at == 0 ? value : (T)0;
                    row[2 * j + 1] = at == 1 ? value : (T)0;
                }
                if (width % 2) row[width - 1] = 0; /* the odd last column is in no window */
            }
        }
        if (height % 2) /* nor is the odd last row */
            for (int64_t j = 0; j < width; j++) grad_x[(plane * height + height - 1) * width + j] = 0;
    }
}

/* The entry points: the planes split over `threads` threads (one below GRAIN values); they return 0. */
int NAME(maxpool2_forward)(const T *x, T *y, int32_t *which, int64_t planes, int64_t height, int64_t width,
                           int threads) {
#pragma omp parallel num_threads(thread_count(planes * height * width, threads))
    {
        int part = omp_get_thread_num(), parts = omp_get_num_threads();
        NAME(maxpool2_forward_planes)(x, y, which, share(planes, part, parts), share(planes, part + 1, parts), height,
                                      width);
    }
    return 0;
}

int NAME(maxpool2_backward)(const T *grad, const int32_t *which, T *grad_x, int64_t planes, int64_t height,
                            int64_t width, int threads) {
#pragma omp parallel num_threads(thread_count(planes * height * width, threads))
    {
        int part = omp_get_thread_num(), parts = omp_get_num_threads();
        NAME(maxpool2_backward_planes)(grad, which, grad_x, share(planes, part, parts), share(planes, part + 1, parts),
                                       height, width);
    }
    return 0;
}
