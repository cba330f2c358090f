/* The Gaussian MLP's R-operator sweeps of gaussian_mlp.py, fused and run tile by tile.
 *
 * A KL Hessian product of MAML-TRPO is a chain of sweeps over every step of every task,
 * each a few matrix products and elementwise passes per layer. Run one torch op at a time,
 * each op reads and writes whole [tasks, steps, width] tensors (megabytes), so the sweeps
 * stream through memory many times; here each sweep runs over tiles of TILE steps of one
 * task at a time, so its intermediates stay in the core's cache, and the matrix products
 * are a register-blocked AVX2/FMA kernel (as fast as MKL on these shapes, and faster on
 * the thin ones). Same arithmetic as the torch path; sums are taken in another order, so
 * the numbers agree to float32 rounding (tested in tests/test_maml_native.py).
 *
 * Layout: float32, every tensor contiguous. Linear layer l (of `layers`) maps width[l]
 * inputs to width[l + 1] outputs; its weight is [tasks, out, in] (and, where the name
 * ends in _t, its transpose [tasks, in, out], made once by the caller), its input h_{l-1}
 * [tasks, steps, in] (the observations for l = 0); hidden layer l's slope act'(z_l),
 * output h_l and dL/dh_l are [tasks, steps, width[l + 1]]. Built by native.py.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define TILE 192   /* steps per tile: 6-row blocks; a tile's buffers fit the 512 KiB L2 */
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

static void gemm(int M, int N, int K, const float *A, long rsa, long csa, const float *B,
                 long ldb, float *C, long ldc, int beta) {
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

static float dot(int n, const float *a, const float *b) {
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
static void times_transposed(int m, int out, int in, const float *x, const float *w,
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
static void times(int m, int in, int out, const float *d, const float *w, float *z, int beta) {
    gemm(m, in, out, d, out, 1, w, in, z, in, beta);  /* z [m, in] (+)= d [m, out] W */
}
static void add_outer(int m, int out, int in, const float *d, const float *x, float *g) {
    gemm(out, in, m, d, 1, out, x, in, g, in, 1);  /* g [out, in] += d^T x over the steps */
}
static void add_column_sums(int m, int out, const float *d, float *g) {
    for (int n = 0; n < m; n++)
        for (int o = 0; o < out; o++) g[o] += d[(long)n * out + o];
}

typedef struct {
    int layers;
    const int *width;
    long max_width;
} Shape;

static Shape shape_of(int layers, const int *width) {
    Shape s = {layers, width, 0};
    for (int l = 0; l <= layers; l++)
        if (width[l] > s.max_width) s.max_width = width[l];
    return s;
}

/* Per call: a tile's buffers. */
typedef struct {
    float *r_input[MAX_LAYERS];        /* R{h_l} of the tile, hidden layer l */
    float *z, *r_delta, *r_other;      /* [TILE, max_width] each */
    float *block;
} Scratch;

static int scratch_alloc(Scratch *s, const Shape *sh) {
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

/* Forward sweep on a tile: R{h_l} of every hidden layer and R{mu} (in s->z), steps n0..,
 * task k: R{z_l} = h_{l-1} dW_l^T + R{h_{l-1}} W_l^T + db_l, R{h_l} = act'(z_l) R{z_l}. */
static void tangent(const Shape *sh, int k, long rows, long n0, int m,
                    const float *const *inputs, const float *const *slopes,
                    const float *const *weights, const float *const *weights_t,
                    const float *const *d_weights, const float *const *d_weights_t,
                    const float *const *d_biases, Scratch *s) {
    const float *r_in = NULL;
    for (int l = 0; l < sh->layers; l++) {
        int in = sh->width[l], out = sh->width[l + 1];
        float *z = l + 1 < sh->layers ? s->r_input[l] : s->z;
        const float *x = inputs[l] + ((long)k * rows + n0) * in;
        long at = (long)k * in * out;
        times_transposed(m, out, in, x, d_weights[l] + at, d_weights_t[l] + at, z, 0);
        if (r_in) times_transposed(m, out, in, r_in, weights[l] + at, weights_t[l] + at, z, 1);
        const float *db = d_biases[l] + (long)k * out;
        const float *slope = l + 1 < sh->layers ? slopes[l] + ((long)k * rows + n0) * out : NULL;
        for (int n = 0; n < m; n++) {
            float *zn = z + (long)n * out;
            if (slope)
                for (int o = 0; o < out; o++) zn[o] = (zn[o] + db[o]) * slope[(long)n * out + o];
            else
                for (int o = 0; o < out; o++) zn[o] += db[o];
        }
        r_in = z;
    }
}

/* Task k's terms of H w that FirstLayer's sums hold (gaussian_mlp.FirstLayer), added to
 * a product made without them: with dW~_0 = [dW_0, db_0], g_w[1] += T dW~_0 and
 * [g_w[0], g_b[0]] += T dW_1 + U dW~_0. */
static void add_first_layer_terms(const int *width, int k, const float *first_t,
                                  const float *first_u, const float *const *d_weights,
                                  const float *const *d_biases, float *const *g_w,
                                  float *const *g_b) {
    int d = width[0], d1 = d + 1, h0 = width[1], h1 = width[2];
    const float *t = first_t + (long)k * h1 * h0 * d1;  /* [o, j, i] */
    const float *u = first_u ? first_u + (long)k * h0 * d1 * d1 : NULL;  /* [j, i, i'] */
    const float *dw0 = d_weights[0] + (long)k * h0 * d, *db0 = d_biases[0] + (long)k * h0;
    const float *dw1 = d_weights[1] + (long)k * h1 * h0;
    float *gw0 = g_w[0] + (long)k * h0 * d, *gb0 = g_b[0] + (long)k * h0;
    float *gw1 = g_w[1] + (long)k * h1 * h0;
    float direction[64];  /* [dW_0, db_0] of unit j; d + 1 <= THIN_INPUT (gaussian_mlp) */
    for (int j = 0; j < h0; j++) {
        for (int i = 0; i < d; i++) direction[i] = dw0[j * d + i];
        direction[d] = db0[j];
        for (int i = 0; i < d1; i++) {
            float sum = 0;
            for (int o = 0; o < h1; o++) sum += t[((long)o * h0 + j) * d1 + i] * dw1[(long)o * h0 + j];
            if (u)
                for (int i2 = 0; i2 < d1; i2++) sum += u[((long)j * d1 + i) * d1 + i2] * direction[i2];
            if (i < d) gw0[j * d + i] += sum; else gb0[j] += sum;
        }
        for (int o = 0; o < h1; o++) {
            float sum = 0;
            for (int i = 0; i < d1; i++) sum += t[((long)o * h0 + j) * d1 + i] * direction[i];
            gw1[(long)o * h0 + j] += sum;
        }
    }
}

/* H w per task, H the Hessian of the inner loss sum_n c_n (0.5 |(a_n - mu_n) / sigma|^2 +
 * sum log sigma) at the stored pass (gaussian_mlp.inner_hessian_product). Out: per layer
 * g_w [tasks, out, in] and g_b [tasks, out], and g_log_std [tasks, A] = sum_n c_n s_n
 * (R{mu_n} + (a_n - mu_n) r), the log-std's part before its factor 2 (r: the log-std
 * direction, s = (a - mu) / sigma^2). With `first_t` (gaussian_mlp.FirstLayer's sums T,
 * and U or NULL), the terms that meet only the first layer's direction come from those. */
int hessian_product(long tasks, long rows, long layers, const int *width,
                    const float *const *inputs, const float *const *slopes,
                    const float *const *deltas, const float *const *d_hidden, long use_tanh,
                    const float *const *weights, const float *const *weights_t,
                    const float *const *d_weights, const float *const *d_weights_t,
                    const float *const *d_biases, const float *coeff, const float *inv_var,
                    const float *scaled, const float *diff, const float *r_log_std,
                    const float *first_t, const float *first_u, float *const *g_w,
                    float *const *g_b, float *g_log_std) {
    if (layers < 1 || layers > MAX_LAYERS || (first_t && (layers < 2 || width[0] >= 64)))
        return -2;
    int held = first_t != NULL;
    Shape sh = shape_of(layers, width);
    Scratch s;
    if (scratch_alloc(&s, &sh)) return -1;
    int act = width[layers];
    for (int k = 0; k < tasks; k++) {
        for (int l = 0; l < layers; l++) {
            memset(g_w[l] + (long)k * width[l] * width[l + 1], 0,
                   sizeof(float) * width[l] * width[l + 1]);
            memset(g_b[l] + (long)k * width[l + 1], 0, sizeof(float) * width[l + 1]);
        }
        float *g_ls = g_log_std + (long)k * act;
        memset(g_ls, 0, sizeof(float) * act);
        const float *iv = inv_var + (long)k * act, *rls = r_log_std + (long)k * act;
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            tangent(&sh, k, rows, n0, m, inputs, slopes, weights, weights_t, d_weights,
                    d_weights_t, d_biases, &s);
            /* R{dL/dmu} = c (R{mu} / sigma^2 + 2 s r) */
            float *rd = s.r_delta, *other = s.r_other;
            for (int n = 0; n < m; n++) {
                long row = (long)k * rows + n0 + n;
                float c = coeff[row];
                for (int a = 0; a < act; a++) {
                    float rmu = s.z[n * act + a], sc = scaled[row * act + a];
                    rd[n * act + a] = c * (iv[a] * rmu + 2 * sc * rls[a]);
                    g_ls[a] += c * sc * (rmu + diff[row * act + a] * rls[a]);
                }
            }
            for (int l = layers - 1; l >= 0; l--) {
                int in = width[l], out = width[l + 1];
                const float *x = inputs[l] + ((long)k * rows + n0) * in;
                float *gw = g_w[l] + (long)k * out * in;
                add_outer(m, out, in, rd, x, gw);
                add_column_sums(m, out, rd, g_b[l] + (long)k * out);
                if (l == 0) break;
                int first_held = held && l == 1;
                const float *delta = deltas[l] + ((long)k * rows + n0) * out;
                const float *r_in = s.r_input[l - 1];
                if (!first_held) add_outer(m, out, in, delta, r_in, gw);
                /* R{dL/dh_{l-1}} = R{delta_l} W_l + delta_l dW_l, then R{delta_{l-1}} =
                 * act' R{dL/dh} + curvature R{h}, the curvature dL/dh act''(z) / act'(z):
                 * -2 h dL/dh for tanh, 0 for ReLU */
                times(m, in, out, rd, weights[l] + (long)k * out * in, other, 0);
                if (!first_held)
                    times(m, in, out, delta, d_weights[l] + (long)k * out * in, other, 1);
                const float *slope = slopes[l - 1] + ((long)k * rows + n0) * in;
                if (!first_held && use_tanh) {
                    const float *h = inputs[l] + ((long)k * rows + n0) * in;
                    const float *dh = d_hidden[l - 1] + ((long)k * rows + n0) * in;
                    for (long i = 0; i < (long)m * in; i++)
                        other[i] = other[i] * slope[i] - 2 * h[i] * dh[i] * r_in[i];
                } else {
                    for (long i = 0; i < (long)m * in; i++) other[i] *= slope[i];
                }
                float *t = rd; rd = other; other = t;
            }
        }
        if (held) add_first_layer_terms(width, k, first_t, first_u, d_weights, d_biases, g_w, g_b);
    }
    free(s.block);
    return 0;
}

/* J_f^T diag(weight_n / sigma^2) J_f w per task (the log-std's part is left to the
 * caller). With P_l = d mu / d z_l per step ([A, width] for hidden layer l), J_f w =
 * sum_l P_l (h_{l-1} dW_l^T + db_l) and J_f^T y has layer l's gradient delta_l^T h_{l-1},
 * delta_l = y P_l, so each layer costs a matrix product each way, not two: P_l is a
 * constant of the product. The last hidden layer's is W_L diag(act'), made here; the
 * lower ones come in `jacobians` ([tasks, steps, A, width], hidden layers 0..layers-3). */
int jacobian_gram(long tasks, long rows, long layers, const int *width,
                  const float *const *inputs, const float *const *slopes,
                  const float *const *jacobians, const float *last_weight,
                  const float *const *d_weights, const float *const *d_weights_t,
                  const float *const *d_biases,
                  const float *step_weight, const float *inv_var, float *const *g_w,
                  float *const *g_b) {
    if (layers < 1 || layers > MAX_LAYERS) return -2;
    Shape sh = shape_of(layers, width);
    Scratch s;
    if (scratch_alloc(&s, &sh)) return -1;
    int act = width[layers];
    float *r_mu = malloc(sizeof(float) * TILE * act);
    if (!r_mu) { free(s.block); return -1; }
    for (int k = 0; k < tasks; k++) {
        for (int l = 0; l < layers; l++) {
            memset(g_w[l] + (long)k * width[l] * width[l + 1], 0,
                   sizeof(float) * width[l] * width[l + 1]);
            memset(g_b[l] + (long)k * width[l + 1], 0, sizeof(float) * width[l + 1]);
        }
        const float *iv = inv_var + (long)k * act;
        const float *w_last = last_weight + (long)k * act * width[layers - 1];
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            memset(r_mu, 0, sizeof(float) * m * act);
            for (int l = 0; l < layers; l++) {  /* J_f w */
                int in = width[l], out = width[l + 1];
                float *u = s.z;
                long first_row = (long)k * rows + n0;
                times_transposed(m, out, in, inputs[l] + first_row * in,
                                 d_weights[l] + (long)k * in * out,
                                 d_weights_t[l] + (long)k * in * out, u, 0);
                const float *db = d_biases[l] + (long)k * out;
                for (int n = 0; n < m; n++)
                    for (int o = 0; o < out; o++) u[(long)n * out + o] += db[o];
                if (l == layers - 1) {
                    for (long i = 0; i < (long)m * act; i++) r_mu[i] += u[i];
                } else if (l == layers - 2) {
                    const float *slope = slopes[l] + first_row * out;
                    for (long i = 0; i < (long)m * out; i++) u[i] *= slope[i];
                    for (int n = 0; n < m; n++)
                        for (int a = 0; a < act; a++)
                            r_mu[n * act + a] += dot(out, w_last + (long)a * out, u + (long)n * out);
                } else {
                    const float *jac = jacobians[l] + first_row * act * out;
                    for (int n = 0; n < m; n++)
                        for (int a = 0; a < act; a++)
                            r_mu[n * act + a] += dot(out, jac + ((long)n * act + a) * out,
                                                     u + (long)n * out);
                }
            }
            for (int n = 0; n < m; n++) {  /* y = M J_f w */
                float c = step_weight[(long)k * rows + n0 + n];
                for (int a = 0; a < act; a++) r_mu[n * act + a] *= c * iv[a];
            }
            for (int l = 0; l < layers; l++) {  /* J_f^T y */
                int in = width[l], out = width[l + 1];
                long first_row = (long)k * rows + n0;
                const float *delta = r_mu;
                if (l < layers - 1) {
                    float *d = s.r_delta;
                    memset(d, 0, sizeof(float) * m * out);
                    const float *jac = l == layers - 2 ? NULL : jacobians[l] + first_row * act * out;
                    for (int n = 0; n < m; n++) {
                        float *dn = d + (long)n * out;
                        for (int a = 0; a < act; a++) {
                            float y = r_mu[n * act + a];
                            const float *p = jac ? jac + ((long)n * act + a) * out
                                                 : w_last + (long)a * out;
                            for (int o = 0; o < out; o++) dn[o] += y * p[o];
                        }
                        if (!jac) {
                            const float *slope = slopes[l] + (first_row + n) * out;
                            for (int o = 0; o < out; o++) dn[o] *= slope[o];
                        }
                    }
                    delta = d;
                }
                add_outer(m, out, in, delta, inputs[l] + first_row * in, g_w[l] + (long)k * out * in);
                add_column_sums(m, out, delta, g_b[l] + (long)k * out);
            }
        }
    }
    free(r_mu);
    free(s.block);
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
static void activate(long count, int use_tanh, float *z, float *slope) {
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

/* The mean network's forward pass, kept for the sweeps (gaussian_mlp.GaussianMLP.forward):
 * hidden[l] and slopes[l] [tasks, steps, width[l + 1]] for each hidden layer, mean
 * [tasks, steps, A]; obs [tasks, steps, width[0]]. */
int forward(long tasks, long rows, long layers, const int *width, const float *obs,
            const float *const *weights, const float *const *weights_t,
            const float *const *biases, long use_tanh,
            float *const *hidden, float *const *slopes, float *mean) {
    if (layers < 1 || layers > MAX_LAYERS) return -2;
    for (int k = 0; k < tasks; k++) {
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            long first_row = (long)k * rows + n0;
            const float *x = obs + first_row * width[0];
            for (int l = 0; l < layers; l++) {
                int in = width[l], out = width[l + 1];
                float *z = l + 1 < layers ? hidden[l] + first_row * out : mean + first_row * out;
                const float *b = biases[l] + (long)k * out;
                for (int n = 0; n < m; n++) memcpy(z + (long)n * out, b, sizeof(float) * out);
                times_transposed(m, out, in, x, weights[l] + (long)k * in * out,
                                 weights_t[l] + (long)k * in * out, z, 1);
                if (l + 1 < layers) activate((long)m * out, use_tanh, z, slopes[l] + first_row * out);
                x = z;
            }
        }
    }
    return 0;
}

/* The backward pass from d_mean [tasks, steps, A] (gaussian_mlp.GaussianMLP.backward):
 * per layer g_w [tasks, out, in] and g_b [tasks, out]; with `deltas` (not NULL), also
 * each hidden layer's dL/dz (deltas[l]) and dL/dh (d_hidden[l]), [tasks, steps, width]. */
int backward(long tasks, long rows, long layers, const int *width,
             const float *const *inputs, const float *const *slopes,
             const float *const *weights, const float *d_mean, float *const *g_w,
             float *const *g_b, float *const *deltas, float *const *d_hidden) {
    if (layers < 1 || layers > MAX_LAYERS) return -2;
    Shape sh = shape_of(layers, width);
    Scratch s;
    if (scratch_alloc(&s, &sh)) return -1;
    int act = width[layers];
    for (int k = 0; k < tasks; k++) {
        for (int l = 0; l < layers; l++) {
            memset(g_w[l] + (long)k * width[l] * width[l + 1], 0,
                   sizeof(float) * width[l] * width[l + 1]);
            memset(g_b[l] + (long)k * width[l + 1], 0, sizeof(float) * width[l + 1]);
        }
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            long first_row = (long)k * rows + n0;
            const float *delta = d_mean + first_row * act;
            for (int l = layers - 1; l >= 0; l--) {
                int in = width[l], out = width[l + 1];
                add_outer(m, out, in, delta, inputs[l] + first_row * in, g_w[l] + (long)k * out * in);
                add_column_sums(m, out, delta, g_b[l] + (long)k * out);
                if (l == 0) break;
                float *spare = delta == s.r_delta ? s.r_other : s.r_delta;
                float *dh = deltas ? d_hidden[l - 1] + first_row * in : spare;
                float *next = deltas ? deltas[l - 1] + first_row * in : spare;
                times(m, in, out, delta, weights[l] + (long)k * out * in, dh, 0);
                const float *slope = slopes[l - 1] + first_row * in;
                for (long i = 0; i < (long)m * in; i++) next[i] = dh[i] * slope[i];
                delta = next;
            }
        }
    }
    free(s.block);
    return 0;
}

/* gaussian_mlp.FirstLayer's sums for thin observations (d + 1 <= 64 inputs with the
 * bias's), with x~ = [x, 1], s = act'(z_0), delta = dL/dz_1, c = -2 h_0 dL/dh_0 (tanh):
 * t [tasks, H_1, H_0, d + 1] = sum_n delta[n, o] s[n, j] x~[n, i] and, for tanh, u [tasks,
 * H_0, d + 1, d + 1] = sum_n s c[n, j] x~[n, i] x~[n, i'] (u NULL for ReLU). */
int first_layer_sums(long tasks, long rows, const int *width, const float *obs,
                     const float *slope, const float *hidden, const float *d_hidden,
                     const float *delta, float *t, float *u) {
    int d = width[0], d1 = d + 1, h0 = width[1], h1 = width[2];
    if (d1 > 64) return -2;
    float *spread = malloc(sizeof(float) * TILE * h0 * d1);
    float *curve = malloc(sizeof(float) * TILE * h0);
    float *outer = malloc(sizeof(float) * TILE * d1 * d1);
    if (!spread || !curve || !outer) { free(spread); free(curve); free(outer); return -1; }
    for (int k = 0; k < tasks; k++) {
        float *tk = t + (long)k * h1 * h0 * d1, *uk = u ? u + (long)k * h0 * d1 * d1 : NULL;
        memset(tk, 0, sizeof(float) * h1 * h0 * d1);
        if (uk) memset(uk, 0, sizeof(float) * h0 * d1 * d1);
        for (long n0 = 0; n0 < rows; n0 += TILE) {
            int m = rows - n0 < TILE ? (int)(rows - n0) : TILE;
            long first_row = (long)k * rows + n0;
            for (int n = 0; n < m; n++) {
                const float *x = obs + (first_row + n) * d;
                const float *sn = slope + (first_row + n) * h0;
                float *row = spread + (long)n * h0 * d1;
                for (int j = 0; j < h0; j++) {
                    for (int i = 0; i < d; i++) row[j * d1 + i] = sn[j] * x[i];
                    row[j * d1 + d] = sn[j];
                }
                if (uk) {
                    const float *h = hidden + (first_row + n) * h0, *dh = d_hidden + (first_row + n) * h0;
                    for (int j = 0; j < h0; j++) curve[(long)n * h0 + j] = -2 * sn[j] * h[j] * dh[j];
                    float *o = outer + (long)n * d1 * d1;
                    for (int i = 0; i < d1; i++)
                        for (int i2 = 0; i2 < d1; i2++)
                            o[i * d1 + i2] = (i < d ? x[i] : 1) * (i2 < d ? x[i2] : 1);
                }
            }
            add_outer(m, h1, h0 * d1, delta + first_row * h1, spread, tk);
            if (uk) add_outer(m, h0, d1 * d1, curve, outer, uk);
        }
    }
    free(spread); free(curve); free(outer);
    return 0;
}
