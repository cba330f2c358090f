/* The kernels MAML's sweeps are built from (sweeps.c, passes.c): a register-blocked
 * AVX2/FMA matrix product for the tiles' shapes, row dot products, the vectorised tanh,
 * and a tile's scratch buffers. Everything is static inline: each file takes what it uses.
 *
 * Layout: float32, every tensor contiguous. Linear layer l (of `layers`) maps width[l]
 * inputs to width[l + 1] outputs; its weight is [tasks, out, in] (and, where the name
 * ends in _t, its transpose [tasks, in, out], made once by the caller), its input h_{l-1}
 * [tasks, steps, in] (the observations for l = 0); hidden layer l's slope act'(z_l),
 * output h_l and dL/dh_l are [tasks, steps, width[l + 1]].
 */
#ifndef GYMLAB_MAML_KERNELS_H
#define GYMLAB_MAML_KERNELS_H

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define TILE 192   /* steps per tile: 6-row blocks; a tile's buffers fit a 512 KiB L2 */
#define MAX_LAYERS 16

/* C[M, N] = (beta ? C : 0) + A B, A(i, k) = A[i * rsa + k * csa], B row-major [K, N] with
 * row stride ldb, C with row stride ldc. Blocks of MR <= 6 rows by NV <= 2 vectors of 8
 * columns are accumulated in registers over all of K; the last vector of a row that does
 * not fill it goes through `mask` (FULL: no partial vector). */
static inline __attribute__((always_inline)) void block(
        const int MR, const int NV, const int FULL, __m256i mask, int K, const float *A,
        long rsa, long csa, const float *B, long ldb, float *C, long ldc, int beta) {
    __m256 acc[6][2];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *b = B + (long)k * ldb, *a = A + (long)k * csa;
        __m256 bv[2];
        for (int v = 0; v < NV; v++)
            bv[v] = !FULL && v == NV - 1 ? _mm256_maskload_ps(b + 8 * v, mask)
                                         : _mm256_loadu_ps(b + 8 * v);
        for (int r = 0; r < MR; r++) {
            __m256 x = _mm256_broadcast_ss(a + r * rsa);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < MR; r++) {
        float *c = C + (long)r * ldc;
        for (int v = 0; v < NV; v++) {
            if (!FULL && v == NV - 1) {
                if (beta) acc[r][v] = _mm256_add_ps(acc[r][v], _mm256_maskload_ps(c + 8 * v, mask));
                _mm256_maskstore_ps(c + 8 * v, mask, acc[r][v]);
            } else {
                if (beta) acc[r][v] = _mm256_add_ps(acc[r][v], _mm256_loadu_ps(c + 8 * v));
                _mm256_storeu_ps(c + 8 * v, acc[r][v]);
            }
        }
    }
}

#define BLOCK_ROWS(NV, FULL)                                                              \
    switch (mr) {                                                                         \
    case 6: block(6, NV, FULL, mask, K, a, rsa, csa, b, ldb, c, ldc, beta); break;        \
    case 5: block(5, NV, FULL, mask, K, a, rsa, csa, b, ldb, c, ldc, beta); break;        \
    case 4: block(4, NV, FULL, mask, K, a, rsa, csa, b, ldb, c, ldc, beta); break;        \
    case 3: block(3, NV, FULL, mask, K, a, rsa, csa, b, ldb, c, ldc, beta); break;        \
    case 2: block(2, NV, FULL, mask, K, a, rsa, csa, b, ldb, c, ldc, beta); break;        \
    default: block(1, NV, FULL, mask, K, a, rsa, csa, b, ldb, c, ldc, beta);              \
    }

static inline void gemm(int M, int N, int K, const float *A, long rsa, long csa,
                        const float *B, long ldb, float *C, long ldc, int beta) {
    for (int i = 0; i < M; i += 6) {
        int mr = M - i < 6 ? M - i : 6;
        const float *a = A + (long)i * rsa;
        for (int j = 0; j < N; j += 16) {
            int nr = N - j < 16 ? N - j : 16, last = nr > 8 ? nr - 8 : nr;
            const float *b = B + j;
            float *c = C + (long)i * ldc + j;
            __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(last),
                                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            if (nr == 16) { BLOCK_ROWS(2, 1) }
            else if (nr == 8) { BLOCK_ROWS(1, 1) }
            else if (nr > 8) { BLOCK_ROWS(2, 0) }
            else { BLOCK_ROWS(1, 0) }
        }
    }
}

static inline float dot(int n, const float *a, const float *b) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float sum = _mm_cvtss_f32(h);
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* The products a sweep needs, on a tile of m steps: */
static inline void times_transposed(int m, int out, int in, const float *x, const float *w,
                                    const float *wt, float *z, int beta) {
    /* z [m, out] (+)= x [m, in] W^T (wt = W^T); a layer of fewer than 8 outputs (the mean)
     * as dot products of rows, which the 8-column kernel would mostly waste */
    if (out >= 8) {
        gemm(m, out, in, x, in, 1, wt, out, z, out, beta);
        return;
    }
    for (int n = 0; n < m; n++)
        for (int o = 0; o < out; o++) {
            float v = dot(in, x + (long)n * in, w + (long)o * in);
            z[(long)n * out + o] = beta ? z[(long)n * out + o] + v : v;
        }
}
static inline void times(int m, int in, int out, const float *d, const float *w, float *z,
                         int beta) {
    gemm(m, in, out, d, out, 1, w, in, z, in, beta);  /* z [m, in] (+)= d [m, out] W */
}
static inline void add_outer(int m, int out, int in, const float *d, const float *x,
                             float *g) {
    gemm(out, in, m, d, 1, out, x, in, g, in, 1);  /* g [out, in] += d^T x over the steps */
}
static inline void add_column_sums(int m, int out, const float *d, float *g) {
    for (int n = 0; n < m; n++)
        for (int o = 0; o < out; o++) g[o] += d[(long)n * out + o];
}

typedef struct {
    int layers;
    const int *width;
    long max_width;
} Shape;

static inline Shape shape_of(int layers, const int *width) {
    Shape s = {layers, width, 0};
    for (int l = 0; l <= layers; l++)
        if (width[l] > s.max_width) s.max_width = width[l];
    return s;
}

/* Task k's gradient buffers, g_w[l] [tasks, out, in] and g_b[l] [tasks, out], to zero. */
static inline void zero_gradients(const Shape *sh, int k, float *const *g_w,
                                  float *const *g_b) {
    for (int l = 0; l < sh->layers; l++) {
        int in = sh->width[l], out = sh->width[l + 1];
        memset(g_w[l] + (long)k * out * in, 0, sizeof(float) * out * in);
        memset(g_b[l] + (long)k * out, 0, sizeof(float) * out);
    }
}

/* Per call: a tile's buffers. */
typedef struct {
    float *r_input[MAX_LAYERS];        /* R{h_l} of the tile, hidden layer l */
    float *z, *r_delta, *r_other;      /* [TILE, max_width] each */
    float *block;
} Scratch;

/* An entry point's start: its layers' shape, and a tile's buffers (free s->block after);
 * 0, or -2 for a layer count it does not take, -1 when out of memory. */
static inline int prepare(long layers, const int *width, Shape *shape, Scratch *s) {
    if (layers < 1 || layers > MAX_LAYERS) return -2;
    *shape = shape_of((int)layers, width);
    const Shape *sh = shape;
    long tile = (long)TILE * sh->max_width, total = 3 * tile;
    for (int l = 0; l + 1 < sh->layers; l++) total += (long)TILE * sh->width[l + 1];
    s->block = malloc(total * sizeof(float));
    if (!s->block) return -1;
    float *p = s->block;
    s->z = p; p += tile;
    s->r_delta = p; p += tile;
    s->r_other = p; p += tile;
    for (int l = 0; l + 1 < sh->layers; l++) { s->r_input[l] = p; p += (long)TILE * sh->width[l + 1]; }
    return 0;
}

/* tanh of 8 floats to about 2 ulp (Cephes' tanhf: an odd polynomial below 0.625, else
 * 1 - 2 / (exp(2|x|) + 1)), with exp by range reduction to [-ln2/2, ln2/2]. */
static inline __m256 exp_ps(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline __m256 tanh_ps(__m256 x) {
    __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f)), a = _mm256_xor_ps(x, sign);
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f),
                                                  _mm256_add_ps(exp_ps(_mm256_add_ps(a, a)), one)));
    __m256 z = _mm256_mul_ps(a, a), p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), a, a);
    __m256 r = _mm256_blendv_ps(small, big, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_GT_OQ));
    return _mm256_or_ps(r, sign);
}

/* The activation in place and its slope act'(z) (1 - h^2 for tanh, [z > 0] for ReLU). */
static inline void activate(long count, int use_tanh, float *z, float *slope) {
    long i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 v = _mm256_loadu_ps(z + i), h, s;
        if (use_tanh) {
            h = tanh_ps(v);
            s = _mm256_fnmadd_ps(h, h, _mm256_set1_ps(1.0f));
        } else {
            __m256 positive = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ);
            h = _mm256_and_ps(v, positive);
            s = _mm256_and_ps(_mm256_set1_ps(1.0f), positive);
        }
        _mm256_storeu_ps(z + i, h);
        _mm256_storeu_ps(slope + i, s);
    }
    if (i < count) {  /* the tail through a zero-padded vector */
        float buf[8] = {0}, sbuf[8];
        memcpy(buf, z + i, sizeof(float) * (count - i));
        activate(8, use_tanh, buf, sbuf);
        memcpy(z + i, buf, sizeof(float) * (count - i));
        memcpy(slope + i, sbuf, sizeof(float) * (count - i));
    }
}

#endif
